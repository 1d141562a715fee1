"""Local development tooling, apart from the product: the processes of a local stack
(Azurite, the local Service Bus broker, a Ray head) and the `statsaga dev` supervisor."""
