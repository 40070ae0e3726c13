// The district drawn in SVG with its own Web Mercator projection: community areas,
// features and alert areas, optional base map tiles under them. No network but the hub's.
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const HEIGHT = 750;

export const STATUS_COLOURS = {
  RAISED: "#d32f2f", ROUTED: "#d32f2f", ACKNOWLEDGED: "#f57c00", VERIFYING: "#f9a825",
  CONFIRMED: "#6a1b9a", DISMISSED: "#607d8b", RESOLVED: "#2e7d32", WITHDRAWN: "#9e9e9e",
};
export const KIND_COLOURS = {
  resource: "#1565c0", shelter: "#2e7d32", incident: "#ef6c00", alert: "#c62828",
};

/** Web Mercator at zoom 0: longitude, latitude to 0..256 world units. */
export function project(lon, lat) {
  const sin = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return [((lon + 180) / 360) * 256, (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * 256];
}

function unproject(x, y) {
  const lon = (x / 256) * 360 - 180;
  const n = Math.PI - (2 * Math.PI * y) / 256;
  return [lon, (180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)))];
}

function element(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

export class DistrictMap {
  constructor(container, { tileUrl, tileAttribution, onSelect, onPick, label }) {
    this.container = container;
    this.tileUrl = tileUrl;
    this.onSelect = onSelect;
    this.onPick = onPick;
    this.picking = false;
    this.svg = element("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "xMidYMid meet",
      role: "group", "aria-label": label,
    });
    this.tiles = element("g", { class: "tiles" }, this.svg);
    this.areas = element("g", { class: "areas" }, this.svg);
    this.alertLayer = element("g", { class: "alert-areas" }, this.svg);
    this.points = element("g", { class: "points" }, this.svg);
    if (tileUrl && tileAttribution) {
      const credit = element("text", { x: WIDTH - 6, y: HEIGHT - 6, "text-anchor": "end", "font-size": 12, fill: "#333" }, this.svg);
      credit.textContent = tileAttribution;
    }
    container.append(this.svg);
    this.svg.addEventListener("click", (event) => {
      if (!this.picking) return;
      const point = this.svg.createSVGPoint();
      point.x = event.clientX;
      point.y = event.clientY;
      const local = point.matrixTransform(this.svg.getScreenCTM().inverse());
      this.onPick(this.toLonLat(local.x, local.y));
    });
    this.bounds = null;
    this.selectedId = null;
  }

  /** Fit the view to the communities' areas (or, without them, to the features). */
  fit(boxes) {
    if (!boxes.length) return;
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [w, s, e, n] of boxes) {
      const [ax, ay] = project(w, n);
      const [bx, by] = project(e, s);
      x0 = Math.min(x0, ax); y0 = Math.min(y0, ay); x1 = Math.max(x1, bx); y1 = Math.max(y1, by);
    }
    const key = [x0, y0, x1, y1].join();
    if (this.boundsKey === key) return;
    this.boundsKey = key;
    const pad = 0.08;
    const scale = Math.min((WIDTH * (1 - 2 * pad)) / Math.max(x1 - x0, 1e-9), (HEIGHT * (1 - 2 * pad)) / Math.max(y1 - y0, 1e-9));
    this.scale = scale;
    this.offset = [WIDTH / 2 - ((x0 + x1) / 2) * scale, HEIGHT / 2 - ((y0 + y1) / 2) * scale];
    this.drawTiles();
  }

  xy(lon, lat) {
    const [x, y] = project(lon, lat);
    return [x * this.scale + this.offset[0], y * this.scale + this.offset[1]];
  }

  toLonLat(x, y) {
    return unproject((x - this.offset[0]) / this.scale, (y - this.offset[1]) / this.scale);
  }

  drawTiles() {
    this.tiles.replaceChildren();
    if (!this.tileUrl) return;
    const z = Math.max(0, Math.min(19, Math.round(Math.log2(this.scale))));
    const n = 2 ** z;
    const size = (256 / n) * this.scale;
    const worldX = (x) => (x - this.offset[0]) / this.scale;
    const first = [Math.floor((worldX(0) / 256) * n), Math.floor((((0 - this.offset[1]) / this.scale) / 256) * n)];
    const last = [Math.floor((worldX(WIDTH) / 256) * n), Math.floor((((HEIGHT - this.offset[1]) / this.scale) / 256) * n)];
    for (let tx = first[0]; tx <= last[0]; tx++) {
      for (let ty = first[1]; ty <= last[1]; ty++) {
        if (ty < 0 || ty >= n) continue;
        const wrapped = ((tx % n) + n) % n;
        const href = this.tileUrl.replace("{z}", z).replace("{x}", wrapped).replace("{y}", ty);
        element("image", {
          href, x: tx * size + this.offset[0], y: ty * size + this.offset[1],
          width: size + 0.5, height: size + 0.5, "aria-hidden": "true",
        }, this.tiles);
      }
    }
  }

  /** Draw everything anew: areas [{code, name, box}], alerts, point features. */
  draw({ communities, alerts, features }) {
    this.areas.replaceChildren();
    this.alertLayer.replaceChildren();
    this.points.replaceChildren();
    for (const community of communities) {
      const [w, s, e, n] = community.box;
      const [x0, y0] = this.xy(w, n);
      const [x1, y1] = this.xy(e, s);
      const group = this.feature(this.areas, community);
      element("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "rgba(13,42,74,0.06)", stroke: "#0d2a4a", "stroke-width": 2, "stroke-dasharray": "6 4" }, group);
      const name = element("text", { x: x0 + 6, y: y0 + 18, "font-size": 16, fill: "#0d2a4a" }, group);
      name.textContent = community.label;
    }
    for (const alert of alerts) {
      const group = this.feature(this.alertLayer, alert);
      for (const ring of alert.rings) {
        const d = ring.map(([lon, lat], i) => `${i ? "L" : "M"}${this.xy(lon, lat).map((v) => v.toFixed(1)).join(" ")}`).join(" ") + "Z";
        element("path", { d, fill: "rgba(198,40,40,0.15)", stroke: KIND_COLOURS.alert, "stroke-width": 2 }, group);
      }
    }
    for (const feature of features) {
      const [x, y] = this.xy(feature.lon, feature.lat);
      const group = this.feature(this.points, feature);
      const colour = feature.colour;
      if (feature.kind === "shelter") {
        element("rect", { x: x - 9, y: y - 9, width: 18, height: 18, fill: colour, stroke: "#fff", "stroke-width": 2 }, group);
      } else if (feature.kind === "incident") {
        element("path", { d: `M${x} ${y - 11}L${x + 10} ${y + 8}L${x - 10} ${y + 8}Z`, fill: colour, stroke: "#fff", "stroke-width": 2 }, group);
      } else if (feature.kind === "flag") {
        element("path", { d: `M${x} ${y - 12}L${x + 12} ${y}L${x} ${y + 12}L${x - 12} ${y}Z`, fill: colour, stroke: "#000", "stroke-width": 1.5 }, group);
      } else {
        element("circle", { cx: x, cy: y, r: 8, fill: colour, stroke: "#fff", "stroke-width": 2 }, group);
      }
    }
  }

  feature(layer, feature) {
    const group = element("g", {
      class: `feature ${feature.kind}${feature.stale ? " stale" : ""}${feature.id === this.selectedId ? " selected" : ""}`,
      tabindex: 0, role: "button", "aria-label": feature.ariaLabel,
      "data-id": feature.id, "data-kind": feature.kind, "data-owner": feature.owner ?? "",
      "data-stale": feature.stale ? "true" : "false",
    }, layer);
    if (feature.status) group.setAttribute("data-status", feature.status);
    const title = element("title", {}, group);
    title.textContent = feature.ariaLabel;
    const select = (event) => {
      if (this.picking) return;
      event.stopPropagation();
      this.selectedId = feature.id;
      for (const other of this.svg.querySelectorAll(".feature.selected")) other.classList.remove("selected");
      group.classList.add("selected");
      this.onSelect(feature);
    };
    group.addEventListener("click", select);
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select(event);
      }
    });
    return group;
  }
}
