// Building the board's DOM. Every piece of data goes in as text (append/textContent/attributes),
// never as HTML, so nothing an operator typed can become markup or script.

import {
  CLOCK, CLOCK_ORDER, PHASES, STATUS, clockReading, duration, formatDateTime, formatShortDate,
  relative, slip, statusLabel, words,
} from "./format.js";

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  setProps(element, props);
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

const SVG = "http://www.w3.org/2000/svg";

function s(tag, props = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  setProps(element, props);
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
  return element;
}

function setProps(element, props) {
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
}

const time = (iso, text = formatDateTime(iso)) => h("time", { datetime: iso }, text);

export function statusBadge(status) {
  const known = STATUS[status];
  return h("span", { class: "badge", "data-status": status },
    h("span", { class: "mark", "aria-hidden": "true" }, known ? known.mark : "?"), statusLabel(status));
}

// --- Header -------------------------------------------------------------------------------

export function incidentLine(incident, now) {
  if (!incident) return [h("span", {}, "No incident recorded")];
  return [
    h("strong", { class: "incident-title" }, incident.title),
    h("span", { class: "tag", "data-severity": incident.severity }, words(incident.severity)),
    h("span", { class: "tag" }, incident.phase === "OPEN" ? "Open" : "Closed"),
    h("span", {}, "declared ", time(incident.declaredAt), ` (${relative(incident.declaredAt, now)})`),
  ];
}

// --- Summary tiles ------------------------------------------------------------------------

function tile(label, value, ...detail) {
  return h("div", { class: "tile" }, h("p", { class: "tile-label" }, label),
    h("p", { class: "tile-value" }, value), detail.length ? h("p", { class: "tile-detail" }, ...detail) : null);
}

export function summaryTiles(incident, services, now) {
  const counts = Object.fromEntries(Object.keys(STATUS).map((status) => [status, 0]));
  for (const service of services) counts[service.status] += 1;
  const progress = incident?.progress;
  const clocks = (incident?.obligations || []).map((o) => clockReading(o, now).state);
  const communication = incident?.communication;
  const silent = (communication?.downWithoutEta || []).map((d) => services.find((x) => x.id === d.serviceId)?.name || d.serviceId);
  const nextUpdate = communication?.nextUpdateBy;
  const tiles = [
    progress?.total ? tile("Restored", `${progress.restored} / ${progress.total}`, `${Math.round(progress.percentRestored)}% of affected services`)
      : tile("Restored", "—", "No services affected yet"),
    h("div", { class: "tile tile-wide" }, h("p", { class: "tile-label" }, `All ${services.length} services`),
      h("ul", { class: "status-counts" }, Object.keys(STATUS).map((status) =>
        h("li", { dataset: { status } }, statusBadge(status), h("span", { class: "count" }, String(counts[status])))))),
    tile("Regulatory clocks", `${clocks.filter((c) => c === "OVERDUE").length} overdue`,
      `${clocks.filter((c) => c === "PENDING").length} pending · ${clocks.filter((c) => c.startsWith("FILED")).length} filed`),
    tile("Next public update", nextUpdate ? formatDateTime(nextUpdate) : "Not promised",
      nextUpdate ? (new Date(nextUpdate) < now ? h("span", { class: "alert" }, `Overdue by ${duration((now - new Date(nextUpdate)) / 1000)}`)
        : relative(nextUpdate, now)) : ""),
    tile("Down with no ETA", String(silent.length), silent.join(", ")),
    tile("Affected", incident?.residentsAffected != null ? `${incident.residentsAffected.toLocaleString("en-GB")} residents` : "—",
      incident?.propertiesAffected != null ? `${incident.propertiesAffected.toLocaleString("en-GB")} homes` : ""),
  ];
  return tiles;
}

// --- Services table -----------------------------------------------------------------------

// Every dependency, direct or through others, that is not operational, with the path to it:
// the same walk as the server's blockedBy, redone here so chains follow live status changes.
export function blockingChains(service, byId) {
  const chains = [];
  const seen = new Set();
  const walk = (ids, path) => {
    for (const id of ids) {
      const dependency = byId.get(id);
      if (!dependency || seen.has(id)) continue;
      seen.add(id);
      if (dependency.status !== "OPERATIONAL") chains.push([...path, dependency]);
      walk(dependency.dependsOn.map((d) => d.id), [...path, dependency]);
    }
  };
  walk(service.dependsOn.map((d) => d.id), []);
  return chains;
}

const byUrgency = (a, b) => (STATUS[a.status]?.rank ?? 9) - (STATUS[b.status]?.rank ?? 9)
  || (a.tier ?? 9) - (b.tier ?? 9) || a.name.localeCompare(b.name);

export function serviceRows(services, byId, now, recentlyChanged) {
  return [...services].sort(byUrgency).map((service) => serviceRow(service, byId, now, recentlyChanged.has(service.id)));
}

function serviceRow(service, byId, now, changed) {
  return h("tr", { dataset: { slug: service.slug, status: service.status }, class: changed ? "changed" : null },
    h("th", { scope: "row" },
      h("span", { class: "service-name" }, service.name),
      h("span", { class: "muted" }, [service.category, service.tier ? `tier ${service.tier}` : null,
        service.residentFacing ? "residents" : "internal"].filter(Boolean).join(" · "))),
    h("td", { class: "status" }, statusBadge(service.status),
      service.statusSince ? h("span", { class: "muted" }, "since ", time(service.statusSince, formatShortDate(service.statusSince))) : null),
    h("td", { class: "phase" }, phaseCell(service.phase)),
    h("td", { class: "eta" }, etaCell(service, now)),
    h("td", { class: "slip" }, slipCell(service)),
    h("td", { class: "blocked" }, chainList(blockingChains(service, byId))),
    h("td", { class: "workarounds" }, workaroundList(service.workarounds)),
  );
}

function phaseCell(phase) {
  if (!phase) return h("span", { class: "muted" }, "Not affected");
  const step = PHASES.indexOf(phase) + 1;
  return [
    h("span", { class: "pips", "aria-hidden": "true" }, PHASES.map((_, i) => h("span", { class: i < step ? "pip on" : "pip" }))),
    h("span", {}, words(phase)), h("span", { class: "muted" }, ` ${step}/${PHASES.length}`),
  ];
}

function etaCell(service, now) {
  const eta = service.eta;
  if (!eta) {
    return service.status === "OPERATIONAL" ? h("span", { class: "muted" }, "—")
      : h("span", { class: "alert" }, "No ETA given");
  }
  const passed = new Date(eta.expectedAt) < now;
  return [
    time(eta.expectedAt),
    h("span", { class: passed ? "alert" : "muted" }, passed ? `passed ${relative(eta.expectedAt, now)}` : relative(eta.expectedAt, now)),
    h("span", { class: "muted" }, `${words(eta.confidence)} confidence`),
  ];
}

function slipCell(service) {
  const given = service.etaHistory.filter((r) => r.expectedAt).length;
  if (!given) return h("span", { class: "muted" }, "—");
  const moved = Math.max(0, given - 1);
  return [
    service.etaSlipSeconds ? h("span", { class: service.etaSlipSeconds > 0 ? "slipped" : null }, slip(service.etaSlipSeconds)) : null,
    h("span", { class: "muted" }, moved === 0 ? "never moved" : `moved ${moved}×`),
  ];
}

function chainList(chains) {
  if (!chains.length) return h("span", { class: "muted" }, "—");
  return h("ul", { class: "chains" }, chains.map((chain) => {
    const blocker = chain[chain.length - 1];
    return h("li", {}, h("span", { class: "blocker" }, blocker.name), " ", statusBadge(blocker.status),
      chain.length > 1 ? h("span", { class: "muted via" }, "via ", chain.slice(0, -1).map((d) => d.name).join(" › ")) : null);
  }));
}

function workaroundList(workarounds) {
  if (!workarounds.length) return h("span", { class: "muted" }, "—");
  return h("ul", { class: "workaround-list" }, workarounds.map((w) => h("li", {},
    h("strong", {}, w.channel), ": ", w.instructions,
    w.contact ? h("span", { class: "contact" }, w.contact) : null,
    w.audience ? h("span", { class: "muted audience" }, `Audience: ${w.audience}`) : null)));
}

// --- Progress chart -----------------------------------------------------------------------

const CHART = { width: 640, height: 210, left: 44, right: 16, top: 14, bottom: 30 };

export function progressChart(progress) {
  const points = [...(progress?.curve || [])].sort((a, b) => new Date(a.at) - new Date(b.at));
  const summary = points.length
    ? `Services restored over time: ${points[0].restored} of ${points[0].total} on ${formatDateTime(points[0].at)}, `
      + `${progress.restored} of ${progress.total} (${Math.round(progress.percentRestored)}%) now.`
    : "No services have been affected yet.";
  const svg = s("svg", { viewBox: `0 0 ${CHART.width} ${CHART.height}`, role: "img",
    "aria-labelledby": "chart-title chart-desc", class: "chart" },
  s("title", { id: "chart-title" }, "Restoration progress"), s("desc", { id: "chart-desc" }, summary));
  const plotWidth = CHART.width - CHART.left - CHART.right;
  const plotHeight = CHART.height - CHART.top - CHART.bottom;
  const y = (fraction) => CHART.top + plotHeight * (1 - fraction);
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s("line", { x1: CHART.left, x2: CHART.width - CHART.right, y1: y(fraction), y2: y(fraction), class: "grid" }),
      s("text", { x: CHART.left - 6, y: y(fraction) + 4, class: "axis", "text-anchor": "end" }, `${fraction * 100}%`));
  }
  if (!points.length) {
    svg.append(s("text", { x: CHART.left + plotWidth / 2, y: y(0.5), class: "axis", "text-anchor": "middle" }, "No services affected yet"));
  } else {
    const start = new Date(points[0].at).getTime();
    const end = Math.max(new Date(points[points.length - 1].at).getTime(), start + 86400000);
    const x = (iso) => CHART.left + plotWidth * ((new Date(iso).getTime() - start) / (end - start));
    const share = (p) => (p.total ? p.restored / p.total : 0);
    let line = `M ${x(points[0].at)} ${y(share(points[0]))}`;
    for (const point of points.slice(1)) line += ` H ${x(point.at)} V ${y(share(point))}`;
    line += ` H ${CHART.left + plotWidth}`;
    const area = `${line} V ${y(0)} H ${CHART.left} Z`;
    const last = points[points.length - 1];
    svg.append(
      s("path", { d: area, class: "area" }), s("path", { d: line, class: "line" }),
      s("circle", { cx: CHART.left + plotWidth, cy: y(share(last)), r: 4, class: "dot" }),
      s("text", { x: CHART.left + plotWidth - 8, y: y(share(last)) - 8, class: "label", "text-anchor": "end" },
        `${last.restored} of ${last.total}`),
    );
    const ticks = [points[0].at, new Date((start + end) / 2).toISOString(), new Date(end).toISOString()];
    ticks.forEach((iso, i) => svg.append(s("text", { x: x(iso), y: CHART.height - 8, class: "axis",
      "text-anchor": ["start", "middle", "end"][i] }, formatShortDate(iso))));
  }
  const table = h("details", { class: "chart-data" }, h("summary", {}, "Chart data"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Restored"),
      h("th", { scope: "col" }, "Affected"))),
    h("tbody", {}, points.map((p) => h("tr", {}, h("td", {}, time(p.at)), h("td", {}, String(p.restored)), h("td", {}, String(p.total)))))));
  return [svg, table];
}

// --- Regulatory clocks --------------------------------------------------------------------

export function clockCards(obligations, now) {
  if (!obligations.length) return [h("p", { class: "muted" }, "No regulatory clocks are running.")];
  const read = obligations.map((o) => ({ o, reading: clockReading(o, now) }));
  read.sort((a, b) => CLOCK_ORDER.indexOf(a.reading.state) - CLOCK_ORDER.indexOf(b.reading.state)
    || (a.o.dueAt ? new Date(a.o.dueAt) : Infinity) - (b.o.dueAt ? new Date(b.o.dueAt) : Infinity));
  return [h("ul", { class: "clocks" }, read.map(({ o, reading }) => h("li", { class: "clock", dataset: { state: reading.state, regime: o.regime } },
    h("h3", {}, o.regulator),
    h("p", { class: "reading" }, h("span", { class: "badge", "data-clock": reading.state }, CLOCK[reading.state] || words(reading.state)),
      " ", h("span", { class: "reading-line" }, reading.line)),
    h("p", { class: "muted regime" }, o.regimeTitle),
    h("dl", {},
      o.anchorAt ? [h("dt", {}, "Aware"), h("dd", {}, time(o.anchorAt))] : null,
      h("dt", {}, "Due"), h("dd", {}, o.dueAt ? time(o.dueAt) : "No fixed period"),
      o.filedAt ? [h("dt", {}, "Filed"), h("dd", {}, time(o.filedAt), o.reference ? ` · ${o.reference}` : "")] : null,
      o.decidedBy ? [h("dt", {}, "Decision"), h("dd", {}, o.decidedBy, o.decisionReason ? `: ${o.decisionReason}` : "")] : null,
    ))))];
}

// --- Timeline -----------------------------------------------------------------------------

const kindWords = (kind) => words(kind.replace(/([a-z])([A-Z])/g, "$1_$2")).replace(/^Eta\b/, "ETA");
const LATE_RECORDING_SECONDS = 600;

export function timelineItems(entries, fresh) {
  return [...entries].reverse().map((entry) => {
    const lag = (new Date(entry.recordedAt) - new Date(entry.occurredAt)) / 1000;
    return h("li", { dataset: { position: entry.position, kind: entry.kind }, class: fresh.has(entry.position) ? "fresh" : null },
      h("p", { class: "when" }, time(entry.occurredAt), h("span", { class: "muted" }, ` #${entry.position}`)),
      h("p", { class: "what" }, h("span", { class: "kind" }, kindWords(entry.kind)), " ", entry.summary),
      h("p", { class: "muted who" }, [
        entry.actor,
        entry.public ? "public" : "internal",
        lag > LATE_RECORDING_SECONDS ? `recorded ${duration(lag)} later` : null,
        entry.reason ? `reason: ${entry.reason}` : null,
        entry.corrects ? `corrects #${entry.corrects}` : null,
        entry.correctedBy ? `corrected by #${entry.correctedBy}` : null,
      ].filter(Boolean).join(" · ")));
  });
}
