"""Process plumbing every role shares: which event loop runs, and children that die
with their parent."""
