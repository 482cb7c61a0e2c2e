// GraphQL over fetch, and subscriptions over one graphql-transport-ws socket that
// reconnects by itself. The token goes in the Authorization header and in connection_init.

export class AuthError extends Error {}

export async function query(token, text, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: text, variables }),
  });
  const body = await response.json().catch(() => ({ errors: [{ message: `HTTP ${response.status}` }] }));
  const errors = body.errors || [];
  const refused = errors.find((e) => ["UNAUTHENTICATED", "FORBIDDEN"].includes(e.extensions?.code));
  if (refused) throw new AuthError(refused.message);
  if (errors.length) throw new Error(errors.map((e) => e.message).join(" "));
  return body.data;
}

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 15000;
const REFUSED = 4403; // the server closes with this when connection_init is refused

// One socket carrying every subscription. `variables()` is asked again at each (re)connect,
// so a subscription can resume after the last position it saw.
export class LiveSocket {
  constructor(token, { onState, onRefused }) {
    this.token = token;
    this.onState = onState;
    this.onRefused = onRefused;
    this.subscriptions = new Map();
    this.retryMs = RETRY_FIRST_MS;
    this.socket = null;
    this.stopped = false;
  }

  subscribe(id, text, variables, onData) {
    this.subscriptions.set(id, { text, variables, onData });
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000, "signed out");
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/graphql`, "graphql-transport-ws");
    this.socket = socket;
    this.onState("connecting");
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${this.token}` } }));
    });
    socket.addEventListener("message", (event) => this.receive(socket, JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket || this.stopped) return;
      if (event.code === REFUSED) {
        this.onRefused("The server refused the token for live updates.");
        return;
      }
      this.onState("retrying", this.retryMs);
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    });
  }

  receive(socket, message) {
    if (message.type === "connection_ack") {
      this.retryMs = RETRY_FIRST_MS;
      for (const [id, sub] of this.subscriptions) {
        socket.send(JSON.stringify({ id, type: "subscribe", payload: { query: sub.text, variables: sub.variables() } }));
      }
      this.onState("live");
    } else if (message.type === "next") {
      const sub = this.subscriptions.get(message.id);
      if (sub && message.payload.data) sub.onData(message.payload.data);
      if (message.payload.errors) this.onState("error", message.payload.errors.map((e) => e.message).join(" "));
    } else if (message.type === "error") {
      const refused = message.payload.find((e) => e.extensions?.code === "UNAUTHENTICATED");
      if (refused) this.onRefused(refused.message);
      else this.onState("error", message.payload.map((e) => e.message).join(" "));
    } else if (message.type === "ping") {
      socket.send(JSON.stringify({ type: "pong" }));
    } else if (message.type === "complete") {
      // The server ended a subscription it should keep open: start afresh, resuming by position.
      socket.close(4000, "subscription completed");
    }
  }
}
