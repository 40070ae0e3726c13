// The district drawn in SVG with its own Web Mercator projection: community areas,
// features and alert areas, optional base map tiles under them. No network but the hub's.
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const HEIGHT = 750;
const MIN_ZOOM = 0.5;
const MAX_ZOOM = 64;
const KEY_ZOOM = 1.5;
const DRAG_THRESHOLD = 4; // SVG units a pointer moves before a press becomes a drag

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
      role: "group", "aria-label": label, tabindex: 0, "aria-keyshortcuts": "+ - 0 ArrowLeft ArrowRight ArrowUp ArrowDown",
    });
    const defs = element("defs", {}, this.svg);
    const hatch = element("pattern", { id: "band-hatch", width: 5, height: 5, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
    element("rect", { width: 5, height: 5, fill: "#fff" }, hatch);
    element("line", { x1: 0, y1: 0, x2: 0, y2: 5, stroke: "#37474f", "stroke-width": 2 }, hatch);
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
      if (!this.picking || this.dragged) return;
      const point = this.svg.createSVGPoint();
      point.x = event.clientX;
      point.y = event.clientY;
      const local = point.matrixTransform(this.svg.getScreenCTM().inverse());
      this.onPick(this.toLonLat(local.x, local.y));
    });
    this.bounds = null;
    this.selectedId = null;
    this.last = null;
    this.zoomLevel = 1;
    this.navigation();
  }

  // --- zoom and pan: mouse wheel and drag, touch (one finger pans, two pinch), keyboard

  /** A point of the page (clientX, clientY) in the SVG's own units. */
  local(clientX, clientY) {
    const point = this.svg.createSVGPoint();
    point.x = clientX;
    point.y = clientY;
    return point.matrixTransform(this.svg.getScreenCTM().inverse());
  }

  /** Zoom by ``factor`` keeping the map point under (x, y) (SVG units) where it is. */
  zoomAt(factor, x = WIDTH / 2, y = HEIGHT / 2) {
    if (!this.scale) return;
    const next = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.zoomLevel * factor));
    const applied = next / this.zoomLevel;
    if (applied === 1) return;
    this.zoomLevel = next;
    this.scale *= applied;
    this.offset = [x - (x - this.offset[0]) * applied, y - (y - this.offset[1]) * applied];
    this.redraw();
  }

  panBy(dx, dy) {
    if (!this.scale) return;
    this.offset = [this.offset[0] + dx, this.offset[1] + dy];
    this.redraw();
  }

  /** Back to the whole district. */
  reset() {
    this.boundsKey = null;
    if (this.lastBoxes) this.fit(this.lastBoxes);
    this.redraw();
  }

  redraw() {
    this.drawTiles();
    if (this.last) this.draw(this.last);
    this.svg.dataset.zoom = this.zoomLevel.toFixed(3);
    this.svg.dataset.offset = this.offset.map((v) => v.toFixed(1)).join(",");
  }

  /** A feature's anchor in SVG units: a point, a community's centre, an alert's vertices' mean. */
  anchor(id) {
    const { communities = [], alerts = [], features = [] } = this.last ?? {};
    const point = features.find((f) => f.id === id);
    if (point) return this.xy(point.lon, point.lat);
    const area = communities.find((c) => c.id === id);
    if (area) {
      const [w, s, e, n] = area.box;
      return this.xy((w + e) / 2, (s + n) / 2);
    }
    const alert = alerts.find((a) => a.id === id);
    const vertices = alert?.rings.flat() ?? [];
    if (!vertices.length) return [null, null];
    const lon = vertices.reduce((sum, v) => sum + v[0], 0) / vertices.length;
    const lat = vertices.reduce((sum, v) => sum + v[1], 0) / vertices.length;
    return this.xy(lon, lat);
  }

  navigation() {
    const svg = this.svg;
    svg.addEventListener("wheel", (event) => {
      event.preventDefault();
      const at = this.local(event.clientX, event.clientY);
      this.zoomAt(Math.exp(-event.deltaY / 300), at.x, at.y);
    }, { passive: false });
    const pointers = new Map(); // pointerId -> {x, y} in SVG units
    let pinch = null;
    svg.addEventListener("pointerdown", () => { this.pressing = true; }, true);
    document.addEventListener("pointerup", () => { this.pressing = false; });
    document.addEventListener("pointercancel", () => { this.pressing = false; });
    svg.addEventListener("pointerdown", (event) => {
      if (event.pointerType === "mouse" && event.button !== 0) return;
      pointers.set(event.pointerId, this.local(event.clientX, event.clientY));
      this.dragged = false;
      this.moved = 0;
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        pinch = Math.hypot(a.x - b.x, a.y - b.y);
      }
    });
    svg.addEventListener("pointermove", (event) => {
      const before = pointers.get(event.pointerId);
      if (!before) return;
      const now = this.local(event.clientX, event.clientY);
      pointers.set(event.pointerId, now);
      if (pointers.size === 2 && pinch) {
        const [a, b] = [...pointers.values()];
        const distance = Math.hypot(a.x - b.x, a.y - b.y);
        this.dragged = true;
        this.zoomAt(distance / pinch, (a.x + b.x) / 2, (a.y + b.y) / 2);
        pinch = distance;
        return;
      }
      this.moved += Math.hypot(now.x - before.x, now.y - before.y);
      if (this.moved > DRAG_THRESHOLD) {
        if (!this.dragged && !svg.hasPointerCapture(event.pointerId)) svg.setPointerCapture(event.pointerId);
        this.dragged = true;
        svg.classList.add("dragging");
        this.panBy(now.x - before.x, now.y - before.y);
      }
    });
    const up = (event) => {
      pointers.delete(event.pointerId);
      if (pointers.size < 2) pinch = null;
      svg.classList.remove("dragging");
    };
    svg.addEventListener("pointerup", up);
    svg.addEventListener("pointercancel", up);
    // a drag is not a click: neither a feature's nor the raising pick
    svg.addEventListener("click", (event) => {
      if (this.dragged) {
        event.stopPropagation();
        event.preventDefault();
        this.dragged = false;
      }
    }, true);
    svg.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const step = 60;
      const moves = {
        "+": () => this.zoomAt(KEY_ZOOM), "=": () => this.zoomAt(KEY_ZOOM), "-": () => this.zoomAt(1 / KEY_ZOOM),
        "_": () => this.zoomAt(1 / KEY_ZOOM), "0": () => this.reset(),
        ArrowLeft: () => this.panBy(step, 0), ArrowRight: () => this.panBy(-step, 0),
        ArrowUp: () => this.panBy(0, step), ArrowDown: () => this.panBy(0, -step),
      };
      const action = moves[event.key];
      if (!action) return;
      event.preventDefault();
      action();
    });
    // a feature reached by Tab is brought into view: zoomed in, nothing is out of reach
    svg.addEventListener("focusin", (event) => {
      const target = event.target.closest?.(".feature");
      // only focus from the keyboard: a press of the mouse or a finger focuses without moving
      if (!target || !this.scale || this.restoring || this.pressing) return;
      // where the feature is, from its data (in double precision: far away features are
      // beyond what the browser's layout can measure)
      const [x, y] = this.anchor(target.dataset.id);
      if (x == null || (x >= 0 && y >= 0 && x <= WIDTH && y <= HEIGHT)) return;
      this.panBy(WIDTH / 2 - x, HEIGHT / 2 - y);
    });
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
    this.lastBoxes = boxes;
    const key = [x0, y0, x1, y1].join();
    if (this.boundsKey === key) return;
    this.zoomLevel = 1;
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
    this.last = { communities, alerts, features };
    // Nothing new (the same answer again, the same view): keep the elements as they are,
    // so a feature being clicked or measured is not replaced under the pointer.
    // (asOf of a live source is the time of each answer; a stale one's is in its label)
    const drawn = JSON.stringify(
      [communities, alerts, features, this.scale, this.offset, this.selectedId],
      (key, value) => (key === "asOf" ? undefined : value),
    );
    if (drawn === this.drawn) return;
    this.drawn = drawn;
    const focused = this.svg.contains(document.activeElement) ? document.activeElement.dataset?.id : null;
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
        const band = feature.band ? { fill: "url(#band-hatch)", stroke: colour, "stroke-width": 3, "stroke-dasharray": "4 3", class: "band-ring" } : { fill: colour, stroke: "#fff", "stroke-width": 2 };
        element("rect", { x: x - 9, y: y - 9, width: 18, height: 18, ...band }, group);
      } else if (feature.kind === "incident") {
        element("path", { d: `M${x} ${y - 11}L${x + 10} ${y + 8}L${x - 10} ${y + 8}Z`, fill: colour, stroke: "#fff", "stroke-width": 2 }, group);
      } else if (feature.kind === "flag") {
        element("path", { d: `M${x} ${y - 12}L${x + 12} ${y}L${x} ${y + 12}L${x - 12} ${y}Z`, fill: colour, stroke: "#000", "stroke-width": 1.5 }, group);
      } else if (feature.band) {
        // approximate: a hatched ring, never a solid dot
        element("circle", { cx: x, cy: y, r: 11, fill: "url(#band-hatch)", stroke: colour, "stroke-width": 3, "stroke-dasharray": "4 3", class: "band-ring" }, group);
      } else {
        element("circle", { cx: x, cy: y, r: 8, fill: colour, stroke: "#fff", "stroke-width": 2 }, group);
      }
      this.quantityLabel(group, feature, x, y);
    }
    if (focused) {
      const again = this.svg.querySelector(`.feature[data-id="${CSS.escape(focused)}"]`);
      if (again) {
        this.restoring = true;
        again.focus({ preventScroll: true });
        this.restoring = false;
      }
    }
  }

  /** What the viewer may see of a quantity: "≈ band" (approximate) or the exact number. */
  quantityLabel(group, feature, x, y) {
    const text = feature.band ? `≈ ${feature.band}` : feature.exact;
    if (text == null || text === "") return;
    group.dataset.precision = feature.band ? "band" : "exact";
    const label = element("text", {
      x: x + 14, y: y + 5, "font-size": 13, class: `quantity ${feature.band ? "band" : "exact"}`,
      "font-style": feature.band ? "italic" : "normal", "font-weight": feature.band ? 400 : 700,
      fill: "#1b1f24", stroke: "#fff", "stroke-width": 3, "paint-order": "stroke", "aria-hidden": "true",
    }, group);
    label.textContent = text;
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
