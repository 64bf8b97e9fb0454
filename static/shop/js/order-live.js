// The order page follows its order over /ws/orders/<id>/: status, history and the cancel button change
// without a reload. The markup it updates is rendered by templates/shop/order_detail.html.
import { liveSocket } from "./live-socket.js";

const STATE_TEXT = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  forbidden: "not live (reload the page)",
};

const label = (status) => {
  const text = status.replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
};
const CANCEL_TEXT = {
  requested: "Cancel requested: waiting for shipping to confirm that the parcel has not left.",
  confirmed: "Cancelled: nothing will be shipped and the reserved stock is released.",
  refused: "Too late to cancel: the parcel was already dispatched, so it will be delivered.",
};
const utc = (iso) => `${new Date(iso).toISOString().replace("T", " ").slice(0, 19)} UTC`;

function historyItem({ status, at }) {
  const item = document.createElement("li");
  item.dataset.historyStatus = status;
  const badge = document.createElement("span");
  badge.className = `status status-${status}`;
  badge.textContent = label(status);
  const time = document.createElement("time");
  time.dateTime = at;
  time.textContent = utc(at);
  item.append(badge, " ", time);
  return item;
}

// Right after checkout the private link's token is in the fragment (never sent to a server): show the
// link once and take the token out of the address bar and the history.
function showShareLink(root) {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) return;
  history.replaceState(history.state, "", location.pathname + location.search);
  const box = root.querySelector("[data-share]");
  if (!box) return;
  box.querySelector("[data-share-link]").value = `${location.origin}${location.pathname}?token=${encodeURIComponent(token)}`;
  box.hidden = false;
}

function follow(root) {
  const orderId = root.dataset.orderId;
  const statusEl = root.querySelector("[data-order-status]");
  const historyEl = root.querySelector("[data-order-history]");
  const stateEl = root.querySelector("[data-live-state]");
  const cancelForm = root.querySelector("[data-cancel-form]");
  const cancelNotice = root.querySelector("[data-cancel-state]");
  const cancellable = new Set((cancelForm?.dataset.cancellableStatuses ?? "").split(" ").filter(Boolean));

  function render(order) {
    if (statusEl.dataset.orderStatus !== order.status) {
      statusEl.dataset.orderStatus = order.status;
      statusEl.className = `status status-${order.status}`;
      statusEl.textContent = label(order.status);
    }
    historyEl.replaceChildren(...order.history.map(historyItem));
    if (cancelForm) cancelForm.hidden = !cancellable.has(order.status) || Boolean(order.cancel);
    if (cancelNotice) {
      const state = order.cancel?.state ?? "";
      cancelNotice.dataset.cancelState = state;
      cancelNotice.textContent = CANCEL_TEXT[state] ?? "";
      cancelNotice.hidden = !state;
    }
  }

  showShareLink(root);
  // The page is served only to a session that may see the order (a private link's token is swapped for
  // the session first), so the socket needs no token.
  liveSocket(`/ws/orders/${orderId}/`, {
    onMessage(frame) {
      if (frame.type === "order" && frame.order && frame.order.id === orderId) render(frame.order);
    },
    onState(state) {
      if (!stateEl) return;
      stateEl.dataset.liveState = state;
      stateEl.textContent = STATE_TEXT[state] ?? state;
    },
  });
}

const root = document.querySelector("[data-order-id]");
if (root) follow(root);
