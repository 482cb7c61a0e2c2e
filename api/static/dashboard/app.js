// The operations dashboard: signs in with an API token, reads the board once over GraphQL,
// then follows serviceChanged and restorationEvents over a websocket, without reloading.

import { formatClockTime, statusLabel } from "./format.js";
import { AuthError, LiveSocket, query } from "./graphql.js";
import { clockCards, h, incidentLine, progressChart, serviceRows, summaryTiles, timelineItems } from "./view.js";

const TOKEN_KEY = "restoration.dashboard.token";
const TIMELINE_LENGTH = 200; // entries kept and shown; older ones are in the API and the audit export
const RENDER_DELAY_MS = 40; // gathers a burst of messages into one redraw
const INCIDENT_REFRESH_DELAY_MS = 250; // lets the other views apply the event the timeline showed
const TICK_MS = 10000; // clocks, ETAs and "ago" move on by themselves
const HIGHLIGHT_MS = 10000;
const START_RETRY_MS = 5000;

const SERVICE_FIELDS = `id slug name category residentFacing tier status phase statusSince
  eta { expectedAt confidence reason setAt } etaHistory { expectedAt setAt } etaSlipSeconds
  workarounds { id channel instructions contact audience } dependsOn { id }`;
const INCIDENT_FIELDS = `id title kind severity phase declaredAt closedAt residentsAffected propertiesAffected
  progress { total restored percentRestored curve { at restored total } }
  obligations { regulator regime regimeTitle anchorAt dueAt filedAt reference state decidedBy decisionReason }
  communication { nextUpdateBy overdue downWithoutEta { serviceId } }`;
const BOARD = `query Board { services { ${SERVICE_FIELDS} } incidents { ${INCIDENT_FIELDS} } }`;
const INCIDENTS = `query Incidents { incidents { ${INCIDENT_FIELDS} } }`;
const SERVICE_CHANGED = `subscription ServiceChanged { serviceChanged { ${SERVICE_FIELDS} } }`;
const EVENTS = `subscription Events($after: Int!) { restorationEvents(after: $after) {
  position occurredAt recordedAt actor reason kind summary public corrects correctedBy } }`;

const $ = (id) => document.getElementById(id);

let state = null;
let live = null;
let renderTimer = null;
let refreshTimer = null;
let tickTimer = null;
let startTimer = null;

function freshState(token, data, head) {
  return {
    token,
    services: new Map(data.services.map((service) => [service.id, service])),
    incidents: data.incidents,
    incidentId: null,
    timeline: [],
    loadedHead: head,
    lastPosition: Math.max(0, head - TIMELINE_LENGTH),
    changedServices: new Map(), // service id -> until when it is highlighted
    freshEntries: new Map(), // timeline position -> until when it is highlighted
  };
}

async function headPosition() {
  try {
    const health = await (await fetch("/healthz")).json();
    return health.headPosition || 0;
  } catch {
    return 0; // replay the whole log rather than show nothing
  }
}

async function start(token) {
  showSignIn(false);
  setConnection("connecting");
  let data;
  let head;
  try {
    [data, head] = await Promise.all([query(token, BOARD), headPosition()]);
  } catch (error) {
    if (error instanceof AuthError) {
      signOut(error.message);
    } else { // the tracker is unreachable or failing: keep the token and try again
      setConnection("error", `could not load the board (${error.message}); trying again`);
      $("sign-out").hidden = false;
      startTimer = setTimeout(() => start(token), START_RETRY_MS);
    }
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state = freshState(token, data, head);
  $("board").hidden = false;
  $("sign-out").hidden = false;
  render({ chart: true, timeline: true });

  live = new LiveSocket(token, { onState: setConnection, onRefused: signOut });
  live.subscribe("services", SERVICE_CHANGED, () => ({}), (d) => serviceChanged(d.serviceChanged));
  live.subscribe("events", EVENTS, () => ({ after: state.lastPosition }), (d) => eventArrived(d.restorationEvents));
  live.start();
  tickTimer = setInterval(() => render({}), TICK_MS);
}

function signOut(message) {
  if (live) live.stop();
  live = null;
  clearInterval(tickTimer);
  clearTimeout(startTimer);
  clearTimeout(renderTimer);
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(TOKEN_KEY);
  state = null;
  $("board").hidden = true;
  for (const id of ["summary-tiles", "service-rows", "chart", "clock-list", "timeline-list", "incident-line"]) $(id).replaceChildren();
  $("sign-out").hidden = true;
  setConnection("signed-out");
  showSignIn(true, message);
}

function showSignIn(visible, message = "") {
  $("sign-in").hidden = !visible;
  $("sign-in-error").textContent = message;
  $("sign-in-error").hidden = !message;
  if (visible) $("token").focus();
}

function setConnection(kind, detail) {
  const words = {
    connecting: "Connecting…",
    live: "Live",
    retrying: `Connection lost; retrying in ${Math.max(1, Math.round((detail || 0) / 1000))} s`,
    error: `Problem: ${detail}`,
    "signed-out": "Signed out",
  };
  $("connection").dataset.state = kind;
  $("connection-text").textContent = words[kind];
  if (kind === "live" && state) scheduleIncidentRefresh(); // catch up on anything missed while away
}

// --- Live data ----------------------------------------------------------------------------

function serviceChanged(service) {
  if (!state) return;
  const before = state.services.get(service.id);
  state.services.set(service.id, service);
  if (before && (before.status !== service.status || before.phase !== service.phase)) {
    state.changedServices.set(service.id, Date.now() + HIGHLIGHT_MS);
    $("announcer").textContent = `${service.name} is now ${statusLabel(service.status)}.`;
    markChange();
  }
  scheduleRender({});
}

function eventArrived(entry) {
  if (!state || entry.position <= state.lastPosition) return;
  state.lastPosition = entry.position;
  if (entry.corrects) {
    const corrected = state.timeline.find((e) => e.position === entry.corrects);
    if (corrected) corrected.correctedBy = entry.position;
  }
  state.timeline.push(entry);
  if (state.timeline.length > TIMELINE_LENGTH) state.timeline.splice(0, state.timeline.length - TIMELINE_LENGTH);
  if (entry.position > state.loadedHead) {
    state.freshEntries.set(entry.position, Date.now() + HIGHLIGHT_MS);
    markChange();
    scheduleIncidentRefresh();
  }
  scheduleRender({ timeline: true });
}

function markChange() {
  $("last-change").textContent = `Last change ${formatClockTime(new Date())}`;
}

function scheduleIncidentRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    if (!state) return;
    try {
      state.incidents = (await query(state.token, INCIDENTS)).incidents;
      render({ chart: true });
    } catch (error) {
      if (error instanceof AuthError) signOut(error.message);
      else setConnection("error", error.message);
    }
  }, INCIDENT_REFRESH_DELAY_MS);
}

// --- Drawing ------------------------------------------------------------------------------

let pending = {};

function scheduleRender(parts) {
  pending = { chart: pending.chart || parts.chart, timeline: pending.timeline || parts.timeline };
  if (renderTimer) return;
  renderTimer = setTimeout(() => {
    renderTimer = null;
    const parts = pending;
    pending = {};
    render(parts);
  }, RENDER_DELAY_MS);
}

function currentIncident() {
  const incidents = state.incidents;
  const chosen = incidents.find((i) => i.id === state.incidentId);
  if (chosen) return chosen;
  const newest = (list) => [...list].sort((a, b) => new Date(b.declaredAt) - new Date(a.declaredAt))[0];
  return newest(incidents.filter((i) => i.phase === "OPEN")) || newest(incidents) || null;
}

function render({ chart = false, timeline = false }) {
  if (!state) return;
  const now = new Date();
  expire(state.changedServices); // the services table is redrawn each time anyway
  const timelineFaded = expire(state.freshEntries);
  const incident = currentIncident();
  const services = [...state.services.values()];

  $("incident-line").replaceChildren(...incidentLine(incident, now));
  renderIncidentChoice(incident);
  $("summary-tiles").replaceChildren(...summaryTiles(incident, services, now));
  $("service-count").textContent = `${services.length} services, worst first`;
  $("service-rows").replaceChildren(...serviceRows(services, state.services, now, state.changedServices));
  $("clock-list").replaceChildren(...clockCards(incident?.obligations || [], now));
  if (chart) {
    const wasOpen = $("chart").querySelector("details")?.open;
    $("chart").replaceChildren(...progressChart(incident?.progress));
    if (wasOpen) $("chart").querySelector("details").open = true;
  }
  if (timeline || timelineFaded) $("timeline-list").replaceChildren(...timelineItems(state.timeline, state.freshEntries));
}

// Drops highlights that have had their time; true if any went.
function expire(highlights) {
  const before = highlights.size;
  for (const [key, until] of highlights) if (until < Date.now()) highlights.delete(key);
  return highlights.size < before;
}

function renderIncidentChoice(incident) {
  const choice = $("incident-choice");
  choice.hidden = state.incidents.length < 2;
  const options = state.incidents.map((i) => [i.id, `${i.title} (${i.phase.toLowerCase()})`]);
  const select = $("incident-select");
  // Redrawn only when the list changes, so an open drop-down survives the clock ticks.
  if (choice.hidden || select.dataset.options === JSON.stringify(options)) return;
  select.dataset.options = JSON.stringify(options);
  select.replaceChildren(...options.map(([id, label]) => h("option", { value: id, selected: incident && id === incident.id }, label)));
}

// --- Wiring -------------------------------------------------------------------------------

function boot() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (!token) {
      showSignIn(true, "Enter an API token (any role can view the dashboard).");
      return;
    }
    start(token);
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out. The token was removed from this tab."));
  $("incident-select").addEventListener("change", (event) => {
    state.incidentId = event.target.value;
    render({ chart: true });
  });
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) start(token);
  else showSignIn(true);
}

boot();
