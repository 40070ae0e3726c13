// GraphQL over HTTP and the flagEvents subscription (graphql-transport-ws) at this hub.
import * as auth from "./auth.js";

export class ApiError extends Error {
  constructor(message, code, errors) {
    super(message);
    this.code = code;
    this.errors = errors;
  }
}

/** One GraphQL request; {data, errors, extensions}. UNAUTHENTICATED renews the token once. */
export async function gql(query, variables = {}, retried = false) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${auth.token()}` },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`HTTP ${response.status}`, "HTTP_" + response.status, []);
  }
  const errors = body.errors ?? [];
  const unauthenticated = errors.some((e) => e.extensions?.code === "UNAUTHENTICATED");
  if ((response.status === 401 || unauthenticated) && !retried && (await auth.renew())) {
    return gql(query, variables, true);
  }
  if (response.status === 401 || unauthenticated) {
    document.dispatchEvent(new CustomEvent("linli:signed-out"));
    throw new ApiError("signed out", "UNAUTHENTICATED", errors);
  }
  if (!body.data && errors.length) {
    throw new ApiError(errors[0].message, errors[0].extensions?.code, errors);
  }
  return { data: body.data ?? {}, errors, extensions: body.extensions ?? {} };
}

const FLAG_EVENTS = `subscription ($after: Int) { flagEvents(after: $after) {
  seq type flagId status community assignedTo at } }`;

/**
 * The caller's flag events, live. A dropped connection is opened again (1, 2, 4 ... 15 s)
 * and resumes after the last sequence number seen, so no event is missed.
 */
export class FlagEvents {
  constructor({ onEvent, onState }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastSeq = null;
    this.delay = 1000;
    this.stopped = false;
    this.socket = null;
    this.subscribedAfter = []; // the sequence number each subscription resumed after
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    this.socket?.close(1000);
  }

  open() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
    const socket = new WebSocket(url, "graphql-transport-ws");
    this.socket = socket;
    this.onState("connecting");
    socket.onopen = () => {
      this.connectedWith = auth.token();
      socket.send(JSON.stringify({
        type: "connection_init", payload: { Authorization: `Bearer ${auth.token()}` },
      }));
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "connection_ack") {
        this.delay = 1000;
        this.subscribedAfter.push(this.lastSeq);
        socket.send(JSON.stringify({
          id: "flags", type: "subscribe",
          payload: { query: FLAG_EVENTS, variables: { after: this.lastSeq } },
        }));
        this.onState(this.subscribedAfter.length > 1 && this.lastSeq === null ? "resync" : "live");
      } else if (frame.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (frame.type === "next") {
        const event = frame.payload?.data?.flagEvents;
        if (event) {
          this.lastSeq = Math.max(this.lastSeq ?? 0, event.seq);
          this.onEvent(event);
        }
      } else if (frame.type === "error") {
        this.onState("error");
      }
    };
    socket.onclose = async (closed) => {
      if (this.socket !== socket || this.stopped) return;
      this.onState("reconnecting");
      // 4401: the token ended (expired, revoked); 4403: refused. Renew before trying again.
      const renewed = auth.token() !== this.connectedWith; // refreshed while it was open
      if ((closed.code === 4401 || closed.code === 4403) && !renewed) {
        if (!(await auth.renew())) {
          if (closed.code === 4401) document.dispatchEvent(new CustomEvent("linli:signed-out"));
          this.onState("offline");
          return;
        }
      }
      setTimeout(() => this.stopped || this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 15000);
    };
  }

  /** Close the socket as a network fault would (the page reconnects and resumes). */
  drop() {
    this.socket?.close(4000, "dropped");
  }
}
