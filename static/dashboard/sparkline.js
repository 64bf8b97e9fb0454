// Tiny SVG sparklines (no chart library needed for a line of 60 points).

const NS = "http://www.w3.org/2000/svg";

export function sparkline(values, { width = 120, height = 24, label = "" } = {}) {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  update(svg, values, width, height);
  return svg;
}

export function update(svg, values, width = 120, height = 24) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`);
  svg.replaceChildren();
  if (!points.length) return svg;
  const area = document.createElementNS(NS, "polygon");
  area.setAttribute("class", "area");
  area.setAttribute("points", `0,${height} ${points.join(" ")} ${((values.length - 1) * step).toFixed(1)},${height}`);
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", points.join(" "));
  svg.append(area, line);
  const title = document.createElementNS(NS, "title");
  title.textContent = `${svg.getAttribute("aria-label")}: max ${max}`;
  svg.append(title);
  return svg;
}
