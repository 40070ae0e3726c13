// The district picture (一张图): the map, live risk flags, alerts and sources.
import * as auth from "./auth.js";
import { ApiError, FlagEvents, gql } from "./api.js";
import { lang, setLang, t, when } from "./i18n.js";
import { DistrictMap, KIND_COLOURS, STATUS_COLOURS } from "./map.js";

// Read from the URL once the sign-in has put the page back at its own address.
let WALL = false;
let REFRESH_S = 5;
const FLAG_SCOPES = ["risk:verify", "risk:flag", "risk:read"];
const NEXT = {
  ROUTED: [["ACKNOWLEDGED", "acknowledge"]],
  ACKNOWLEDGED: [["VERIFYING", "verify"]],
  VERIFYING: [["CONFIRMED", "confirm"], ["DISMISSED", "dismiss"]],
  CONFIRMED: [["RESOLVED", "resolve"]],
  DISMISSED: [["RESOLVED", "resolve"]],
};
const FLAG_FIELDS = `id community category description location { coordinates } address severity
  status assignedTo deadlineAt escalationLevel version raisedAt updatedAt
  transitions { status at by note }`;
const PICTURE = (withRiskFlags) => `query Picture {
  communities { code name bbox { west south east north } }
  resources(first: 200) { edges { node { id owner name kind quantity available unit status
    address location { coordinates } availableBand { label } updatedAt } } }
  shelters(first: 200) { edges { node { id owner name capacity occupancy accessible status
    address location { coordinates } freeBedsBand { label } updatedAt } } }
  incidents(first: 200) { edges { node { id owner title category severityLevel status address
    affectedPeople location { coordinates } reportedAt updatedAt } } }
  alerts(first: 100, where: {activeOnly: true}) { edges { node { id owner identifier sender sent
    status msgType active infos { event headline severity urgency expires
    areas { areaDesc geometry { coordinates } } } } } }
  ${withRiskFlags ? `riskFlags(first: 200) { edges { node { id owner category description status
    estimatedSeverity address location { coordinates } assignedTo updatedAt } } }` : ""}
  sources { id name kind status lastSeen latencyMs }
}`;
const FLAGS = `query Flags { flags(first: 200) { edges { node { ${FLAG_FIELDS} } } } }`;
const FLAG = `query Flag($id: ID!) { flag(id: $id) { ${FLAG_FIELDS} } }`;
const MOVE = `mutation Move($id: ID!, $to: RiskFlagStatus!, $v: Int!, $note: String) {
  transitionFlag(id: $id, to: $to, expectedVersion: $v, note: $note) { ${FLAG_FIELDS} } }`;
const RAISE = `mutation Raise($input: RiskFlagCreateInput!) {
  raiseRiskFlag(input: $input) { id source status version } }`;

const state = {
  caller: null,
  communities: [],
  layers: {}, // field -> source -> {records, stale, asOf}
  sources: [],
  reports: [],
  flags: new Map(), // the workflow's flags (FlagCase), by id
  live: "offline",
  picked: null,
};
let map;
let events;
let categories = {};

/** A risk category's name in the chosen language (the hub's code list, from config.json). */
const category = (code) => categories[code]?.[lang()] ?? code ?? "";

const $ = (id) => document.getElementById(id);
const make = (tag, attributes = {}, text = null) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
};
const can = (scope) => state.caller?.scopes.has(scope) ?? false;
const followsFlags = () => FLAG_SCOPES.some(can);

async function boot() {
  setLang(lang());
  $("lang").addEventListener("click", () => {
    setLang(lang() === "en" ? "zh" : "en");
    fillCategories();
    legend();
    if (state.caller) showCaller();
    render();
  });
  const config = await (await fetch("config.json")).json();
  $("hub-name").textContent = config.hubName;
  categories = Object.fromEntries(config.riskCategories.map((c) => [c.code, c]));
  fillCategories();
  await auth.start(config);
  const params = new URLSearchParams(location.search);
  WALL = params.get("wall") === "1";
  REFRESH_S = Math.max(1, Number(params.get("refresh")) || 5);
  if (WALL) document.body.classList.add("wall");
  state.caller = auth.claims();
  document.addEventListener("linli:signed-out", signedOut);
  $("signin-button").addEventListener("click", () => {
    saveDraft();
    auth.signIn();
  });
  if (!state.caller) {
    if (auth.lastFailure()) {
      showSignIn(auth.lastFailure());
    } else {
      await auth.signIn(); // nobody signed in: to the hub's sign-in page
    }
    return;
  }
  showCaller();
  map = new DistrictMap($("map"), {
    tileUrl: config.tileUrl,
    tileAttribution: config.tileAttribution,
    label: t("map"),
    onSelect: showDetails,
    onPick: pickPlace,
  });
  $("map-note").textContent = config.tileUrl ? "" : t("mapNoTiles");
  $("zoom-in").addEventListener("click", () => map.zoomAt(1.5));
  $("zoom-out").addEventListener("click", () => map.zoomAt(1 / 1.5));
  $("zoom-reset").addEventListener("click", () => map.reset());
  legend();
  if (!WALL) {
    $("sign-out").hidden = false;
    $("sign-out").addEventListener("click", async () => {
      events?.stop();
      await auth.signOut(); // the hub has ended the session when this returns
      showSignIn(null);
      document.body.dataset.signedOut = "true";
    });
    if (can("risk:flag") && state.caller.org_kind === "community") setupRaising();
  }
  await refresh();
  if (followsFlags()) {
    await loadFlags();
    events = new FlagEvents({ onEvent: flagEvent, onState: liveState });
    window.linliFlagEvents = events; // the browser tests drop the connection through it
    events.start();
  }
  setInterval(refresh, REFRESH_S * 1000);
  setInterval(tick, 1000);
  restoreDraft();
  document.body.dataset.ready = "true";
}

// --- a session that ends: sign in again, keeping what was typed

function showSignIn(reason) {
  $("signin").hidden = false;
  $("signin-error").textContent = reason ? `${t("failed")}: ${reason}` : "";
  $("signin-button").focus();
}

function signedOut() {
  events?.stop();
  saveDraft();
  showSignIn(null);
}

function saveDraft() {
  const description = $("raise-description").value;
  if ($("raise-panel").hidden || !state.picked) return;
  sessionStorage.setItem("linli.draft", JSON.stringify({
    description, category: $("raise-category").value, severity: $("raise-severity").value,
    picked: state.picked,
  }));
}

function restoreDraft() {
  const saved = sessionStorage.getItem("linli.draft");
  sessionStorage.removeItem("linli.draft");
  if (!saved || $("raise-mode").hidden) return;
  const draft = JSON.parse(saved);
  pickPlace(draft.picked);
  $("raise-description").value = draft.description;
  $("raise-category").value = draft.category;
  $("raise-severity").value = draft.severity;
}

function showCaller() {
  const c = state.caller;
  const who = [c.name ?? c.sub, c.org, c.client_id].filter(Boolean).join(" · ");
  $("who").textContent = `${t("signedInAs")}: ${who}${WALL ? ` (${t("wall")}, ${t("viewer")})` : ""}`;
}

function legend() {
  const entries = [
    [t("resources"), KIND_COLOURS.resource], [t("shelters"), KIND_COLOURS.shelter],
    [t("incidents"), KIND_COLOURS.incident], [t("alertArea"), KIND_COLOURS.alert],
    [t("exactAmount"), "#37474f"], [t("bandAmount"), "#37474f", "band"],
    ...Object.entries(STATUS_COLOURS).slice(1, 8).map(([s, c]) => [t(`S_${s}`), c]),
  ];
  $("legend").replaceChildren(...entries.map(([label, colour, kind]) => {
    const span = make("span", kind ? { class: kind } : {}, label);
    span.style.setProperty("--c", colour); // CSSOM, which the page's CSP allows
    return span;
  }));
}

// --- the picture: records of every source, kept per source so nothing disappears silently

async function refresh() {
  let answer;
  try {
    answer = await gql(PICTURE(!followsFlags() && (can("incidents:read") || can("risk:verify"))));
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED") return;
    $("map-note").textContent = `${t("failed")}: ${error.message}`;
    return;
  }
  const { data, extensions } = answer;
  const now = new Date().toISOString();
  state.reports = extensions.sources ?? [];
  if (data.communities) state.communities = data.communities;
  if (data.sources) state.sources = data.sources;
  for (const field of ["resources", "shelters", "incidents", "alerts", "riskFlags"]) {
    if (!data[field]) continue;
    const bySource = {};
    for (const edge of data[field].edges) (bySource[edge.node.owner] ??= []).push(edge.node);
    const layer = (state.layers[field] ??= {});
    const reports = state.reports.filter((r) => r.path?.[0] === field);
    for (const report of reports) {
      const records = bySource[report.source] ?? [];
      if (report.status === "ok") {
        layer[report.source] = { records, stale: false, asOf: now };
      } else if (report.status === "stale") {
        layer[report.source] = { records, stale: true, asOf: report.asOf };
      } else if (layer[report.source]) {
        // The source did not answer: keep what it said last, shown stale with its time.
        layer[report.source] = { ...layer[report.source], stale: true };
      }
    }
    for (const [source, records] of Object.entries(bySource)) {
      if (!reports.some((r) => r.source === source)) layer[source] = { records, stale: false, asOf: now };
    }
    for (const [source, entry] of Object.entries(layer)) {
      // A source the hub did not ask this time (down, its circuit open) said nothing new:
      // what it said last stays, marked stale.
      if (!bySource[source] && !reports.some((r) => r.source === source)) {
        layer[source] = { ...entry, stale: true };
      }
    }
  }
  document.body.dataset.refreshed = now;
  render();
}

async function loadFlags() {
  const { data } = await gql(FLAGS);
  state.flags = new Map((data.flags?.edges ?? []).map((e) => [e.node.id, e.node]));
  render();
}

async function flagEvent(event) {
  try {
    const { data } = await gql(FLAG, { id: event.flagId });
    if (data.flag) state.flags.set(data.flag.id, data.flag);
  } catch {
    const known = state.flags.get(event.flagId);
    if (known) state.flags.set(event.flagId, { ...known, status: event.status });
  }
  render();
}

function liveState(live) {
  if (live === "resync") {
    // Reconnected before any event arrived: no sequence number to resume from, so read
    // the flags again rather than miss what happened while the socket was down.
    live = "live";
    loadFlags();
  }
  state.live = live;
  const badge = $("live");
  badge.textContent = t(live === "live" ? "live" : live === "offline" ? "offline" : "reconnecting");
  badge.className = `badge${live === "live" ? " live" : ""}`;
  badge.dataset.state = live;
}

// --- drawing

function features() {
  const out = [];
  const add = (kind, field, colourOf, labelOf, amountOf = () => ({})) => {
    for (const [source, entry] of Object.entries(state.layers[field] ?? {})) {
      for (const record of entry.records) {
        const point = record.location?.coordinates;
        if (!point) continue;
        const { exact, band } = amountOf(record);
        const amount = band ? ` · ${t("approx")} ${band}` : exact ? ` · ${exact}` : "";
        out.push({
          id: record.id, kind, owner: source, record, lon: point[0], lat: point[1],
          colour: colourOf(record), stale: entry.stale, asOf: entry.asOf, exact, band,
          status: record.status, ariaLabel: `${t(field)}: ${labelOf(record)}${amount}${entry.stale ? ` (${t("stale")} ${when(entry.asOf)})` : ""}`,
        });
      }
    }
  };
  add("resource", "resources", () => KIND_COLOURS.resource, (r) => r.name ?? r.kind ?? r.id, resourceAmount);
  add("shelter", "shelters", () => KIND_COLOURS.shelter, (r) => r.name ?? r.id, shelterAmount);
  add("incident", "incidents", () => KIND_COLOURS.incident, (r) => r.title ?? r.id);
  add("flag", "riskFlags", (r) => STATUS_COLOURS[r.status] ?? "#000", (r) => `${category(r.category)} ${t(`S_${r.status}`)}`);
  for (const flag of state.flags.values()) {
    const [lon, lat] = flag.location.coordinates;
    out.push({
      id: flag.id, kind: "flag", owner: flag.community, record: flag, lon, lat,
      colour: STATUS_COLOURS[flag.status] ?? "#000", stale: false, status: flag.status,
      ariaLabel: `${t("riskFlags")}: ${category(flag.category)} ${t(`S_${flag.status}`)}`,
    });
  }
  return out;
}

/** A resource's quantity as the viewer may see it: exact (a number) or a band (its label). */
function resourceAmount(r) {
  const exact = r.available ?? r.quantity;
  if (exact != null) return { exact: `${exact}${r.unit ? ` ${r.unit}` : ""}`, band: null };
  return { exact: null, band: r.availableBand?.label ?? null };
}

/** A shelter's free places: exact (capacity minus occupancy) or a band. */
function shelterAmount(s) {
  if (s.capacity != null && s.occupancy != null) return { exact: `${s.occupancy}/${s.capacity}`, band: null };
  return { exact: null, band: s.freeBedsBand?.label ?? null };
}

function alertAreas() {
  const out = [];
  for (const [source, entry] of Object.entries(state.layers.alerts ?? {})) {
    for (const alert of entry.records) {
      const rings = [];
      for (const info of alert.infos ?? []) {
        for (const area of info.areas ?? []) {
          for (const polygon of area.geometry ?? []) rings.push(...polygon.coordinates);
        }
      }
      const headline = alert.infos?.[0]?.headline ?? alert.infos?.[0]?.event ?? alert.identifier;
      out.push({ id: alert.id, kind: "alert", owner: source, record: alert, rings, stale: entry.stale, asOf: entry.asOf, ariaLabel: `${t("alerts")}: ${headline}` });
    }
  }
  return out;
}

function communityAreas() {
  return state.communities.filter((c) => c.bbox).map((c) => ({
    id: `Organisation:${c.code}`, kind: "community", owner: c.code, record: c,
    box: [c.bbox.west, c.bbox.south, c.bbox.east, c.bbox.north], label: c.name,
    ariaLabel: `${t("community")}: ${c.name}`,
  }));
}

function render() {
  if (!map) return;
  const communities = communityAreas();
  const points = features();
  const boxes = communities.length ? communities.map((c) => c.box) : points.map((p) => [p.lon, p.lat, p.lon, p.lat]);
  map.fit(boxes);
  if (map.scale) map.draw({ communities, alerts: alertAreas(), features: points });
  renderFlags();
  renderAlerts();
  renderSources();
  liveState(state.live);
}

function renderFlags() {
  const list = $("flags");
  const flags = followsFlags()
    ? [...state.flags.values()]
    : Object.values(state.layers.riskFlags ?? {}).flatMap((e) => e.records.map((r) => ({ ...r, community: r.owner, severity: r.estimatedSeverity })));
  flags.sort((a, b) => (b.raisedAt ?? b.updatedAt).localeCompare(a.raisedAt ?? a.updatedAt));
  if (!flags.length) {
    list.replaceChildren(make("li", { class: "muted" }, t("noFlags")));
    return;
  }
  const focused = document.activeElement?.id;
  list.replaceChildren(...flags.map(flagItem));
  if (focused && $(focused)) $(focused).focus();
}

function flagItem(flag) {
  const item = make("li", { "data-flag": flag.id, "data-status": flag.status });
  const title = make("p", {});
  const status = make("span", { class: "status" }, t(`S_${flag.status}`));
  title.append(status, ` · ${category(flag.category)} · ${flag.community}`);
  item.append(title, make("p", { class: "small" }, flag.description ?? ""));
  if (flag.deadlineAt && flag.status === "ROUTED") {
    item.append(make("p", { class: "deadline small", "data-deadline": flag.deadlineAt }));
  }
  const moves = NEXT[flag.status] ?? [];
  const mayMove = !WALL && can("risk:verify") && flag.assignedTo === state.caller.org && flag.version;
  if (mayMove && moves.length) {
    const box = make("div", { class: "workflow row" });
    const noteId = `note-${flag.id}`;
    const label = make("label", { for: noteId, class: "visually-hidden" }, t("note"));
    const note = make("input", { id: noteId, type: "text", placeholder: t("note"), maxlength: "500" });
    box.append(label, note);
    for (const [to, key] of moves) {
      const button = make("button", { type: "button", id: `move-${to}-${flag.id}`, "data-to": to }, t(key));
      button.addEventListener("click", () => move(flag, to, note.value));
      box.append(button);
    }
    item.append(box);
  }
  tickOne(item);
  return item;
}

async function move(flag, to, note) {
  try {
    const { data } = await gql(MOVE, { id: flag.id, to, v: flag.version, note: note || null });
    state.flags.set(flag.id, data.transitionFlag);
  } catch (error) {
    alertText(`${t("failed")}: ${error.code ?? ""} ${error.message}`);
    const { data } = await gql(FLAG, { id: flag.id });
    if (data.flag) state.flags.set(flag.id, data.flag);
  }
  render();
}

function alertText(text) {
  $("map-note").textContent = text;
}

function tick() {
  for (const item of document.querySelectorAll("#flags li")) tickOne(item);
}

function tickOne(item) {
  const node = item.querySelector("[data-deadline]");
  if (!node) return;
  const left = Math.round((new Date(node.dataset.deadline) - Date.now()) / 1000);
  const abs = Math.abs(left);
  const span = `${Math.floor(abs / 60)}:${String(abs % 60).padStart(2, "0")}`;
  node.textContent = left >= 0 ? `${t("deadline")} ${when(node.dataset.deadline)} · ${t("left")} ${span}` : `${t("deadline")} ${when(node.dataset.deadline)} · ${t("overdue")} ${span}`;
  node.classList.toggle("overdue", left < 0);
}

function renderAlerts() {
  const alerts = Object.values(state.layers.alerts ?? {}).flatMap((e) => e.records).filter((a) => a.active !== false);
  if (!alerts.length) {
    $("alerts").replaceChildren(make("li", { class: "muted" }, t("noAlerts")));
    return;
  }
  $("alerts").replaceChildren(...alerts.map((alert) => {
    const info = alert.infos?.[0] ?? {};
    const item = make("li", { "data-alert": alert.id });
    item.append(
      make("p", {}, `${info.severity ?? ""} · ${info.headline ?? info.event ?? alert.identifier}`),
      make("p", { class: "small muted" }, `${(info.areas ?? []).map((a) => a.areaDesc).join("; ")} · ${when(alert.sent)}${info.expires ? ` → ${when(info.expires)}` : ""}`),
    );
    return item;
  }));
}

function renderSources() {
  const stale = new Map();
  for (const report of state.reports) {
    if (report.status === "stale" && report.asOf) stale.set(report.source, report.asOf);
  }
  for (const layer of Object.values(state.layers)) {
    for (const [source, entry] of Object.entries(layer)) if (entry.stale && !stale.has(source)) stale.set(source, entry.asOf);
  }
  $("sources").replaceChildren(...state.sources.map((source) => {
    const row = make("tr", { "data-source": source.id, "data-status": source.status });
    const name = make("td", {}, source.name || source.id);
    const status = make("td", { class: `st-${source.status}` }, source.status);
    const latency = make("td", {}, source.latencyMs == null ? "—" : `${Math.round(source.latencyMs)} ms`);
    const asOf = make("td", {}, stale.has(source.id) ? `${t("stale")} ${when(stale.get(source.id))}` : source.status === "ok" ? t("live") : when(source.lastSeen));
    row.append(name, status, latency, asOf);
    return row;
  }));
}

// --- details: exactly the fields the API returned for the feature

function showDetails(feature) {
  const panel = $("details-panel");
  panel.hidden = false;
  const list = make("dl", { class: "fields" });
  for (const [key, value] of Object.entries(feature.record)) {
    list.append(make("dt", {}, key), make("dd", {}, value === null ? t("withheld") : typeof value === "object" ? JSON.stringify(value) : String(value)));
  }
  const parts = [];
  if (feature.stale) parts.push(make("p", { class: "stale-note" }, `${t("stale")} ${when(feature.asOf)}`));
  $("details").replaceChildren(...parts, list);
  $("details-title").focus();
}

// --- raising a flag: community staff click the map at their community

function setupRaising() {
  const button = $("raise-mode");
  button.hidden = false;
  button.setAttribute("aria-pressed", "false");
  const stop = () => {
    map.picking = false;
    map.container.classList.remove("raising");
    button.setAttribute("aria-pressed", "false");
  };
  button.addEventListener("click", () => {
    const on = !map.picking;
    map.picking = on;
    map.container.classList.toggle("raising", on);
    button.setAttribute("aria-pressed", String(on));
    alertText(on ? t("raising") : "");
  });
  document.addEventListener("keydown", (event) => event.key === "Escape" && stop());
  $("raise-cancel").addEventListener("click", () => {
    $("raise-panel").hidden = true;
    stop();
  });
  $("raise-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const [lon, lat] = state.picked;
    const input = {
      category: $("raise-category").value,
      description: $("raise-description").value,
      estimatedSeverity: $("raise-severity").value,
      location: { type: "Point", coordinates: [Number(lon.toFixed(6)), Number(lat.toFixed(6))] },
    };
    try {
      const { data } = await gql(RAISE, { input });
      $("raise-result").textContent = `${t("raised")}: ${data.raiseRiskFlag.id}`;
      $("raise-description").value = "";
    } catch (error) {
      $("raise-result").textContent = `${t("failed")}: ${error.code ?? ""} ${error.message}`;
    }
  });
}

function fillCategories() {
  const select = $("raise-category");
  const chosen = select.value;
  select.replaceChildren(...Object.keys(categories).map((code) => make("option", { value: code }, category(code))));
  if (chosen) select.value = chosen;
}

function pickPlace([lon, lat]) {
  state.picked = [lon, lat];
  map.picking = false;
  map.container.classList.remove("raising");
  $("raise-mode").setAttribute("aria-pressed", "false");
  $("raise-panel").hidden = false;
  $("raise-result").textContent = "";
  $("raise-where").textContent = `${t("where")}: ${lon.toFixed(5)}, ${lat.toFixed(5)}`;
  $("raise-description").focus();
}

boot();
