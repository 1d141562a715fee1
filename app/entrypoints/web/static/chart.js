// A small line chart of one number over a series (a player's skill over their matches),
// drawn as inline SVG with the DOM: no charting library, nothing inline for the CSP to
// refuse. It is an image to assistive technology (role="img" and a title summarising
// it); the pages put the numbers themselves in a table beside it.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 320;
const HEIGHT = 120;
const PAD = { left: 44, right: 8, top: 10, bottom: 18 };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}

/** Where each of ``values`` is drawn, as [x, y] in the chart's 320 x 120 box: x by order
 * (one value in the middle), y from the lowest value (bottom) to the highest (top); equal
 * values make a flat line across the middle. */
export function points(values) {
  const low = Math.min(...values);
  const high = Math.max(...values);
  const w = WIDTH - PAD.left - PAD.right;
  const h = HEIGHT - PAD.top - PAD.bottom;
  return values.map((v, i) => [
    PAD.left + (values.length === 1 ? w / 2 : (w * i) / (values.length - 1)),
    PAD.top + (high === low ? h / 2 : (h * (high - v)) / (high - low)),
  ]);
}

const round = (n) => Math.round(n * 10) / 10;

/** An SVG chart of ``values`` (oldest first) with ``title`` as its accessible name and
 * ``format`` for the axis labels (the lowest and the highest value). */
export function lineChart(id, title, values, format = String) {
  const at = points(values);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const bottom = HEIGHT - PAD.bottom;
  const axisLabel = (y, value) =>
    svg("text", { x: PAD.left - 4, y: round(y), "text-anchor": "end", "dominant-baseline": "middle", class: "chart-label" }, format(value));
  const line = at.map(([x, y]) => `${round(x)},${round(y)}`).join(" ");
  return svg(
    "svg",
    {
      id, class: "chart", role: "img", viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      "aria-labelledby": `${id}-title`, "data-points": values.length,
    },
    svg("title", { id: `${id}-title` }, title),
    svg("line", { x1: PAD.left, y1: bottom, x2: WIDTH - PAD.right, y2: bottom, class: "chart-axis" }),
    axisLabel(at[values.indexOf(high)][1], high),
    ...(high === low ? [] : [axisLabel(at[values.indexOf(low)][1], low)]),
    svg("text", { x: PAD.left, y: HEIGHT - 3, class: "chart-label" }, "oldest"),
    svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 3, "text-anchor": "end", class: "chart-label" }, "newest"),
    svg("polyline", { points: line, class: "chart-line" }),
    ...at.map(([x, y]) => svg("circle", { cx: round(x), cy: round(y), r: 2.5, class: "chart-dot" })),
  );
}
