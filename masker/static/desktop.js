// Payment panel: follows the agent's current call and its capture over the live feed.
// Only masked data ever arrives here; the bearer token lives in memory and sessionStorage.
"use strict";

const FIELD_LABELS = { pan: "Card number", expiry: "Expiry date", cvv: "Security code",
                       postcode: "Postcode" };
const REASONS = {
  luhn_failed: "card number fails check", unknown_brand: "card type not accepted",
  bad_length_for_brand: "wrong length for this card", too_short: "too few digits",
  too_long: "too many digits", bad_month: "not a real month", expired: "expired",
  too_far_ahead: "expiry too far ahead", token_issue_failed: "token could not be issued",
  timeout: "timed out", gateway_error: "gateway error", insufficient_funds: "insufficient funds",
  psp_server_error: "gateway unavailable", connection_error: "gateway unreachable",
  psp_rejected_request: "gateway refused the request", bad_response: "bad gateway answer",
  no_gateway: "no payment gateway configured",
};
// What the "Payment" line says in each state when no hand-off result is there to show.
const PAYMENT_LINES = {
  tokenised: "Waiting for the gateway…", handing_off: "Sending to payment gateway…",
  token_only: "Not sent · no amount was asked for; the card is kept as a token only",
  token_failed: "Not sent · no token", cancelled: "Not sent · cancelled",
  timed_out: "Not sent · the caller did not finish in time",
  failed: "Not sent · too many invalid entries",
  expired: "Not sent · the card is no longer held (hold time over)",
  call_ended: "Not sent · call ended",
  call_lost: "Not sent · call lost: the server carrying it stopped",
};
// States whose "Payment" line is the hand-off result itself.
const HANDOFF_SHOWN = ["handed_off", "declined", "not_configured", "handoff_failed"];
const POLL_MS = 2000;

const state = { token: null, callId: null, calls: [], ws: null, wsCall: null, retry: 0,
                fields: {}, order: [], current: null, capture: null, captureState: null };
const $ = (id) => document.getElementById(id);

function readToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const fromHash = hash.get("token");
  if (fromHash) {
    sessionStorage.setItem("masker.token", fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return fromHash || sessionStorage.getItem("masker.token");
}

async function api(method, path, body) {
  const init = { method, headers: { Authorization: "Bearer " + state.token } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401) signOut("Your sign-in was not accepted.");
  if (!resp.ok) throw new Error((data.error && data.error.message) || resp.statusText);
  return data;
}

function signOut(message) {
  state.token = null;
  sessionStorage.removeItem("masker.token");
  closeFeed();
  show("login", true); show("call", false); show("start", false); show("capture", false);
  $("login-error").textContent = message || "";
  setConn("Signed out", "idle");
}

function show(id, on) { $(id).hidden = !on; }
function setConn(text, kind) { const c = $("conn"); c.textContent = text; c.className = "pill pill-" + kind; }

// ---- calls -------------------------------------------------------------------------------
async function pollCalls() {
  if (!state.token) return;
  try {
    const { calls } = await api("GET", "/api/calls");
    state.calls = calls.filter((c) => c.state !== "ended" || c.id === state.callId);
    renderCalls();
  } catch (err) {
    setConn("Offline", "bad");
  }
}

function renderCalls() {
  const live = state.calls.filter((c) => c.state !== "ended");
  const sel = $("call-select");
  if (!state.calls.some((c) => c.id === state.callId)) {
    const newest = live.sort((a, b) => (b.started || 0) - (a.started || 0))[0];
    selectCall(newest ? newest.id : null);
  }
  sel.hidden = live.length < 2;
  sel.replaceChildren(...live.map((c) => {
    const o = document.createElement("option");
    o.value = c.id; o.textContent = describeCall(c); o.selected = c.id === state.callId;
    return o;
  }));
  const call = state.calls.find((c) => c.id === state.callId);
  show("call", true);
  $("call-line").textContent = call ? describeCall(call) : "Waiting for a call…";
  if (!call) { show("start", false); show("capture", false); }
  renderMasking();
}

function describeCall(c) {
  const since = c.started ? new Date(c.started * 1000).toLocaleTimeString() : "";
  const who = c.caller ? c.caller + " · " : "";
  const lost = c.state === "ended" && c.end_reason === "lost";
  const st = lost ? "Lost (its server stopped)"
    : c.state ? c.state[0].toUpperCase() + c.state.slice(1) : "";
  return `${who}${st}${since ? " since " + since : ""} · call ${String(c.id).slice(0, 8)}`;
}

function selectCall(id) {
  if (id === state.callId) return;
  state.callId = id;
  $("masking-note").textContent = ""; $("call-error").textContent = "";
  resetCapture(null);
  closeFeed();
  if (id) openFeed(id);
}

// ---- feed --------------------------------------------------------------------------------
function openFeed(id) {
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(`${proto}${location.host}/api/calls/${encodeURIComponent(id)}/feed`);
  state.ws = ws; state.wsCall = id;
  ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: state.token }));
  ws.onmessage = (msg) => { state.retry = 0; setConn("Live", "live"); onEvent(JSON.parse(msg.data)); };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (ev.code === 4401) { signOut("Your sign-in was not accepted."); return; }
    if (ev.code === 4001) { signOut("Your sign-in has expired. Sign in again."); return; }
    if (ev.code === 4404) { setConn("Call gone", "idle"); return; }
    setConn("Reconnecting…", "bad");
    const delay = Math.min(5000, 250 * 2 ** state.retry++);
    setTimeout(() => { if (state.callId === id && !state.ws) openFeed(id); }, delay);
  };
}

function closeFeed() {
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
}

const STATE_TITLES = {
  collecting: "Caller is keying the card", complete: "Card captured — issuing token",
  tokenised: "Card captured", token_failed: "Token could not be issued",
  handing_off: "Sending to payment gateway…", handoff_failed: "Payment gateway did not answer",
  handed_off: "Payment sent", declined: "Payment declined", cancelled: "Payment cancelled",
  timed_out: "Capture timed out", failed: "Capture failed", expired: "Card no longer held",
  not_configured: "Card tokenised — no payment gateway",
  token_only: "Card tokenised — token only", call_ended: "Call ended", call_lost: "Call lost",
};
const FINAL = ["handed_off", "declined", "cancelled", "timed_out", "failed", "expired",
               "not_configured", "token_only", "call_ended", "call_lost"];
const COLLECTING = ["collecting", "complete", "handing_off"];

// The panel state a hand-off result leads to (the session's own state, except that a
// capture ended without a gateway is final although its session stays "tokenised").
function handoffState(ev) {
  if (ev.status === "approved") return "handed_off";
  if (ev.status === "declined") return "declined";
  if (ev.status === "not_configured") return "not_configured";
  return "handoff_failed";
}

function onEvent(ev) {
  switch (ev.type) {
    case "state":
      updateCall(ev.call);
      resetCapture(ev.call.capture);
      break;
    case "capture":
      resetCapture(ev.capture);
      break;
    case "call":
      updateCall({ id: state.callId, state: ev.state,
                   end_reason: ev.state === "ended" ? ev.reason || null : null });
      break;
    case "masking":
      updateCall({ id: state.callId, armed: ev.armed === true });
      break;
    case "field_started":
      fieldStarted(ev);
      break;
    case "progress":
      updateField(ev.field, ev);
      break;
    case "complete":
      if (ev.brand) setBrand(ev.brand);
      setCaptureState("complete");
      break;
    case "token":
      showToken(ev);
      setCaptureState("tokenised");
      break;
    case "handoff":
      state.lastHandoff = ev;
      showHandoff(ev);
      setCaptureState(handoffState(ev));
      break;
    case "error":
      $("capture-error").textContent = reasonText(ev.reason || (ev.error && ev.error.code));
      break;
    default:
      if (STATE_TITLES[ev.type]) setCaptureState(ev.type);
  }
}

function updateCall(call) {
  const known = state.calls.find((c) => c.id === call.id);
  if (known) Object.assign(known, call); else state.calls.push(call);
  renderCalls();
  const ended = call.state === "ended";
  $("take-payment").disabled = ended;
  if (ended && state.capture) setCaptureState(state.captureState);
  renderMasking();
}

function currentCall() { return state.calls.find((c) => c.id === state.callId) || null; }
function callEnded() { const c = currentCall(); return !!c && c.state === "ended"; }
// A call whose server stopped (another server of the cluster saw it go): it is over,
// and nothing more will be heard of it.
function callLost() { const c = currentCall(); return callEnded() && c.end_reason === "lost"; }

// "End payment": a `capture`-policy call stays masked after its capture until the agent
// ends the payment phase (refused by the service while the caller is keying a capture).
function renderMasking() {
  const call = currentCall();
  const on = !!call && call.policy === "capture" && call.armed === true && call.state !== "ended";
  show("masking-row", on);
  if (on) $("masking-note").textContent = "";
  $("end-payment").disabled = COLLECTING.includes(state.captureState);
  $("end-payment").title = $("end-payment").disabled
    ? "The caller is keying a card: cancel the capture first" : "";
}

// ---- capture ----------------------------------------------------------------------------
function resetCapture(capture) {
  state.fields = {}; state.order = []; state.current = null; state.capture = capture || null;
  state.captureState = null; state.lastHandoff = null; state.hasToken = false;
  state.agentCancelled = false;
  $("fields").replaceChildren();
  $("token").textContent = "—"; $("handoff").textContent = "—"; $("handoff").className = "";
  show("outcome", false);
  $("brand").hidden = true; $("capture-error").textContent = "";
  show("start", !!state.callId && !capture);
  show("capture", !!capture);
  if (!capture) return;
  const amount = Number.isInteger(capture.amount)
    ? `${(capture.amount / 100).toFixed(2)} ${capture.currency || ""}` : "";
  $("capture-summary").textContent = [amount, capture.reference].filter(Boolean).join(" · ");
  applyStatus(capture);
}

function applyStatus(st) {
  const tokenInfo = st.token && typeof st.token === "object" ? st.token : null;
  for (const f of Array.isArray(st.fields) ? st.fields : []) {
    const wiped = f.complete && !f.display && tokenInfo && f.kind === "pan";
    updateField(f.field, wiped ? { ...f, display: tokenInfo.display, brand: tokenInfo.brand } : f,
                true);
  }
  if (typeof st.current_field === "string") markCurrent(st.current_field);
  if (tokenInfo) showToken(tokenInfo);
  const handoff = st.handoff && typeof st.handoff === "object" ? st.handoff : null;
  state.lastHandoff = handoff;
  if (handoff) showHandoff(handoff);
  setCaptureState(handoff && handoff.status === "not_configured" ? "not_configured" : st.state);
}

// The state the panel shows: the session's own, except that a capture with a token and
// no amount (an automatic capture) ends at its token: no hand-off follows, and the
// "cancelled" the session reports when the call ends only wipes what it still held.
function shownState(st) {
  const noAmount = !!state.capture && !(Number.isInteger(state.capture.amount) &&
                                        state.capture.amount > 0);
  if (noAmount && state.hasToken && !state.lastHandoff &&
      ["tokenised", "cancelled", "expired"].includes(st)) return "token_only";
  return st;
}

function setCaptureState(st) {
  state.captureState = st;
  const ended = callEnded();
  const endedAs = callLost() ? "call_lost" : "call_ended";
  let shown = shownState(st);
  // the call's end cancels what its capture still held: say the call ended (unless the
  // agent had cancelled first, or the gateway may still answer)
  // (a lost call's server is gone: nothing it was still doing will ever answer)
  if (ended && (shown === "cancelled" ? !state.agentCancelled
                                       : !FINAL.includes(shown) &&
                                         (shown !== "handing_off" || endedAs === "call_lost"))) {
    shown = endedAs;
  }
  const final = FINAL.includes(shown);
  let title = STATE_TITLES[shown] || "Payment";
  if (ended && shown !== endedAs) {
    title = final ? `${title} · ${STATE_TITLES[endedAs].toLowerCase()}` : STATE_TITLES[endedAs];
  }
  $("capture-title").textContent = title;
  const fromHandoff = state.lastHandoff && HANDOFF_SHOWN.includes(shown);
  if (!fromHandoff) {
    const el = $("handoff");
    const line = PAYMENT_LINES[shown] || "—";
    el.textContent = line;
    el.className = shown === "token_only" || line === "—" || line.endsWith("…") ? "" : "bad";
    if (line !== "—" && (state.hasToken || final || ended)) show("outcome", true);
  }
  $("cancel").hidden = final || ended || st === "handing_off";
  $("new-payment").hidden = !final || ended;
  const last = state.lastHandoff;
  $("retry-handoff").hidden = ended || st !== "handoff_failed" || !(last && last.retryable);
  refreshRestartButtons();
  renderMasking();
  if (st !== "collecting" || ended) markCurrent(null);
}

function refreshRestartButtons() {
  const open = !callEnded() &&
    (state.captureState === "collecting" || state.captureState === "token_failed");
  for (const [name, li] of Object.entries(state.fields)) {
    const touched = li.dataset.result || li.querySelector(".display").textContent;
    li.querySelector(".restart").hidden = !open || !(touched || name === state.current);
  }
}

function fieldStarted(ev) {
  const li = ensureField(ev.field);
  markCurrent(ev.field);
  if (ev.restarted) {
    setRow(li, "pending", "", "");
    li.querySelector(".display").textContent = "";
    li.querySelector(".count").textContent = "waiting for caller";
  } else if (ev.attempt > 1) {
    li.querySelector(".count").textContent = `Caller is re-keying (attempt ${ev.attempt})`;
  }
  if (state.captureState !== "collecting") setCaptureState("collecting");
}

function ensureField(name) {
  if (!name) return null;
  if (state.fields[name]) return state.fields[name];
  const li = document.createElement("li");
  li.className = "field";
  li.innerHTML = `<span class="mark" aria-hidden="true">…</span>
    <div><div class="fname"></div><div class="display"></div>
    <div class="count"></div><div class="reason"></div></div>
    <button type="button" class="restart">Restart</button>`;
  const label = FIELD_LABELS[name] || name;
  li.querySelector(".fname").textContent = label;
  li.querySelector(".restart").setAttribute("aria-label", `Restart ${label}`);
  li.querySelector(".restart").addEventListener("click", () => restartField(name));
  li.dataset.field = name;
  $("fields").append(li);
  state.fields[name] = li; state.order.push(name);
  return li;
}

function setRow(li, result, mark, reason) {
  const m = li.querySelector(".mark");
  m.className = "mark" + (result === "ok" ? " ok" : result === "bad" ? " bad" : "");
  m.textContent = mark || "…";
  const r = li.querySelector(".reason");
  r.textContent = reason;
  if (result === "pending") delete li.dataset.result; else li.dataset.result = result;
}

function updateField(name, ev, fromSnapshot = false) {
  const li = ensureField(name);
  if (!li) return;
  const entered = Number.isInteger(ev.entered) ? ev.entered : null;
  const label = FIELD_LABELS[name] || name;
  if (ev.display) li.querySelector(".display").textContent = ev.display;
  else if (entered) li.querySelector(".display").textContent = "•".repeat(entered);
  if (ev.valid === true) {
    setRow(li, "ok", "✓", "");
    const n = entered || (ev.display || "").replace(/[^•0-9]/g, "").length;
    li.querySelector(".count").textContent = n ? `${n} digits · accepted` : "accepted";
    if (!fromSnapshot) announce(`${label} accepted`);
  } else if (ev.valid === false) {
    const why = reasonText(ev.reason);
    setRow(li, "bad", "✗", why);
    if (!fromSnapshot) announce(`${label}: ${why}`);
  } else if (entered !== null) {
    if (entered > 0 || li.dataset.result !== "bad") setRow(li, "pending", "…", "");
    li.querySelector(".count").textContent = entered
      ? `${entered} digit${entered === 1 ? "" : "s"} keyed` : "waiting for caller";
    if (!fromSnapshot && entered > 0) markCurrent(name);
  }
  if (ev.brand) setBrand(ev.brand);
  refreshRestartButtons();
}

function reasonText(code) {
  if (!code) return "invalid";
  return REASONS[code] || String(code).replace(/_/g, " ");
}

function markCurrent(name) {
  state.current = name;
  for (const [n, li] of Object.entries(state.fields)) li.classList.toggle("current", n === name);
  refreshRestartButtons();
}

function setBrand(brand) {
  const names = { visa: "Visa", mastercard: "Mastercard", amex: "American Express",
                  discover: "Discover", jcb: "JCB", unionpay: "UnionPay", diners: "Diners Club",
                  maestro: "Maestro" };
  const b = $("brand");
  b.textContent = names[brand] || brand;
  b.hidden = false;
}

function showToken(ev) {
  if (!ev.token || typeof ev.token !== "string") return;
  $("token").textContent = ev.token;
  state.hasToken = true;
  if (ev.brand) setBrand(ev.brand);
  show("outcome", true);
  announce("Card captured, token received");
}

function showHandoff(ev) {
  const el = $("handoff");
  if (ev.status === "approved" || ev.ok === true) {
    el.textContent = "Approved" + (ev.authorisation ? ` · auth ${ev.authorisation}` : "");
    el.className = "good";
  } else if (ev.status === "declined") {
    el.textContent = "Declined" + (ev.reason ? ` · ${reasonText(ev.reason)}` : "");
    el.className = "bad";
  } else if (ev.status === "not_configured") {
    el.textContent = "Not sent · no payment gateway configured; card kept as token only";
    el.className = "";
  } else {
    el.textContent = `Not sent · ${reasonText(ev.reason || ev.status)}` +
      (ev.retryable ? " · you can retry" : "");
    el.className = "bad";
  }
  show("outcome", true);
  announce(`Payment ${el.textContent}`);
}

function announce(text) { $("announce").textContent = text; }

// ---- actions -------------------------------------------------------------------------------
async function startPayment(event) {
  event.preventDefault();
  const err = $("start-error");
  err.textContent = "";
  const amount = $("amount").value.trim();
  const reference = $("reference").value.trim();
  if (!/^[0-9]{1,9}(\.[0-9]{1,2})?$/.test(amount) || Number(amount) <= 0) {
    err.textContent = "Enter an amount like 12.50"; $("amount").focus(); return;
  }
  if (!reference) { err.textContent = "Enter a reference"; $("reference").focus(); return; }
  try {
    const body = { amount, currency: $("currency").value, reference };
    const data = await api("POST", `/api/calls/${encodeURIComponent(state.callId)}/capture`, body);
    // The feed may have brought this capture, and the caller's keys after it, before this
    // reply: the reply is then older than what the panel shows.
    const fed = !!state.capture && !!data.capture && state.capture.session === data.capture.session;
    if (!fed) resetCapture(data.capture);
    $("cancel").focus();
  } catch (e) {
    err.textContent = e.message;
  }
}

async function restartField(name) {
  try {
    const path = `/api/calls/${encodeURIComponent(state.callId)}/capture/restart`;
    const data = await api("POST", path, { field: name });
    if (data.capture) applyStatus(data.capture);
  } catch (e) {
    $("capture-error").textContent = e.message;
  }
}

async function cancelPayment() {
  state.agentCancelled = true;
  try {
    const data = await api("DELETE", `/api/calls/${encodeURIComponent(state.callId)}/capture`);
    setCaptureState((data.capture && data.capture.state) || "cancelled");
  } catch (e) {
    state.agentCancelled = false;
    $("capture-error").textContent = e.message;
  }
}

async function retryHandoff() {
  $("capture-error").textContent = "";
  const before = state.lastHandoff;
  try {
    $("retry-handoff").hidden = true;
    await api("POST", `/api/calls/${encodeURIComponent(state.callId)}/capture/retry`);
    if (state.lastHandoff === before) {  // the result may already have come over the feed
      $("handoff").textContent = "Retrying…"; $("handoff").className = "";
      setCaptureState("handing_off");
    }
  } catch (e) {
    $("capture-error").textContent = e.message;
    setCaptureState(state.captureState);
  }
}

async function endPayment() {
  $("call-error").textContent = "";
  try {
    const call = await api("POST", `/api/calls/${encodeURIComponent(state.callId)}/payment/end`);
    updateCall(call);
    $("masking-note").textContent = "Payment ended: the caller's keypad is heard again.";
    announce("Payment ended, keypad no longer masked");
  } catch (e) {
    $("call-error").textContent = e.message;
  }
}

function newPayment() {
  resetCapture(null);
  $("amount").focus();
}

function init() {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("token-input").value.trim();
    $("token-input").value = "";
    if (!value) return;
    state.token = value;
    sessionStorage.setItem("masker.token", value);
    signedIn();
  });
  $("start-form").addEventListener("submit", startPayment);
  $("cancel").addEventListener("click", cancelPayment);
  $("new-payment").addEventListener("click", newPayment);
  $("retry-handoff").addEventListener("click", retryHandoff);
  $("end-payment").addEventListener("click", endPayment);
  $("call-select").addEventListener("change", (e) => selectCall(e.target.value));
  state.token = readToken();
  if (state.token) signedIn(); else signOut();
  setInterval(pollCalls, POLL_MS);
}

function signedIn() {
  show("login", false);
  $("login-error").textContent = "";
  setConn("Connecting…", "idle");
  pollCalls();
}

document.addEventListener("DOMContentLoaded", init);
