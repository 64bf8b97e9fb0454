// Storefront availability follows inventory live over /ws/stock/. The words match the server's
// (shop/templatetags/shop_tags.py): "In stock: N", "Only N left", "Sold out".
import { liveSocket } from "./live-socket.js";

const holder = document.querySelector("[data-low-stock]");
const LOW_STOCK = Number(holder?.dataset.lowStock ?? 5);

function words(n) {
  if (n <= 0) return "Sold out";
  if (n <= LOW_STOCK) return `Only ${n} left`;
  return `In stock: ${n}`;
}

function level(n) {
  if (n <= 0) return "out";
  return n <= LOW_STOCK ? "low" : "ok";
}

function apply(products) {
  const available = new Map(products.map((p) => [p.sku, p.available]));
  for (const el of document.querySelectorAll("[data-availability-sku]")) {
    const n = available.get(el.dataset.availabilitySku);
    if (n === undefined || String(n) === el.dataset.available) continue;
    el.dataset.available = String(n);
    el.textContent = words(n);
    el.className = `availability availability-${level(n)}`;
  }
  for (const button of document.querySelectorAll("[data-add-to-cart][data-sku]")) {
    const n = available.get(button.dataset.sku);
    if (n !== undefined) button.disabled = n <= 0;
  }
}

if (document.querySelector("[data-availability-sku]")) {
  liveSocket("/ws/stock/", {
    onMessage(frame) {
      if (frame.type === "stock" && Array.isArray(frame.products)) apply(frame.products);
    },
  });
}
