// Ratings as the pages show them: the displayed skill (mu - 3 sigma), the model's numbers
// as secondary text, and a signed skill change that never relies on colour alone.
import { el } from "./api.js";

/** A displayed skill, to two places (as the API rounds it). */
export const fmtSkill = (x) => x.toFixed(2);

/** ``mu ± sigma`` of a rating: the model's estimate and its uncertainty. */
export const fmtMuSigma = (r) => `${r.mu.toFixed(2)} ± ${r.sigma.toFixed(2)}`;

/** A skill change as text with its sign ("+1.25", "−0.40", "±0.00"): the sign says it, the
 * colour only repeats it. */
export function fmtChange(x) {
  const size = Math.abs(x).toFixed(2);
  if (size === "0.00") return `±${size}`;
  return x > 0 ? `+${size}` : `\u2212${size}`;
}

/** A skill change as a span coloured by its direction (``up``, ``down`` or ``flat``). */
export function change(x) {
  const text = fmtChange(x);
  const way = text.startsWith("+") ? "up" : text.startsWith("±") ? "flat" : "down";
  return el("span", { class: `change change-${way}` }, text);
}

/** A player's rating in one match: "before → after" and the signed change, or "not
 * rated" (a match not rated, or its saga not started yet). */
export function ratingMove(rating) {
  if (!rating) return el("span", { class: "muted" }, "not rated");
  return el(
    "span",
    { class: "move" },
    `${fmtSkill(rating.before.skill)} → ${fmtSkill(rating.after.skill)} `,
    change(rating.skill_change),
  );
}
