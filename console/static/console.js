// aiops-stream console: buttons and forms send JSON commands; server-sent events keep the page current.
"use strict";

function flash(text, isError) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = text;
  box.className = isError ? "flash error" : "flash";
  box.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

async function send(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { /* no JSON body */ }
  if (response.status === 401) { window.location = "/login?next=" + encodeURIComponent(location.pathname); return null; }
  if (!response.ok) {
    flash((data.field ? data.field + ": " : "") + (data.error || response.statusText), true);
    return null;
  }
  flash("Sent. The page updates when the engine applies it.", false);
  return data;
}

function formBody(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.type === "submit" || el.type === "button") continue;
    if (el.name === "matchers") {
      body.matchers = el.value.split("\n").map((l) => l.trim()).filter((l) => l);
    } else if (el.hasAttribute("data-number")) {
      body[el.name] = Number(el.value);
    } else if (el.value !== "") {
      body[el.name] = el.value;
    }
  }
  return body;
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-post]");
  if (button) {
    event.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    const done = await send(button.dataset.post, {});
    if (!done) button.disabled = false;
    return;
  }
  if (event.target.id === "preview") {
    const form = document.getElementById("new-silence");
    const params = new URLSearchParams();
    for (const m of formBody(form).matchers || []) params.append("matcher", m);
    const response = await fetch("/api/silences/preview?" + params, { credentials: "same-origin" });
    const data = await response.json();
    const out = document.getElementById("preview-result");
    out.textContent = "";
    if (!response.ok) { out.textContent = data.error; return; }
    const head = document.createElement("p");
    head.textContent = data.items.length + " open incident(s) would be muted";
    out.appendChild(head);
    const list = document.createElement("ul");
    for (const item of data.items) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "/incidents/" + encodeURIComponent(item.id);
      a.textContent = item.title;
      li.appendChild(a);
      list.appendChild(li);
    }
    out.appendChild(list);
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-json-form]");
  if (!form) return;
  event.preventDefault();
  const done = await send(form.dataset.jsonForm, formBody(form));
  if (done && form.id === "new-silence") setTimeout(() => location.reload(), 1500);
});

async function refresh(url, target) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (response.ok) target.innerHTML = await response.text();
}

function live() {
  const rows = document.getElementById("incident-rows");
  const body = document.getElementById("incident-body");
  const dot = document.getElementById("live");
  if (!rows && !body && document.body.dataset.page !== "silences") return;
  const source = new EventSource("/api/events");
  let pending = null;
  source.onopen = () => { if (dot) dot.classList.add("on"); };
  source.onerror = () => { if (dot) dot.classList.remove("on"); };
  source.addEventListener("incident", (event) => {
    const incident = JSON.parse(event.data);
    if (body && incident.id !== body.dataset.id) return;
    clearTimeout(pending);
    pending = setTimeout(() => {
      if (rows) refresh("/fragments/incidents?" + rows.dataset.query, rows);
      else if (body) refresh("/fragments/incidents/" + encodeURIComponent(body.dataset.id), body);
    }, 200);
  });
}

// A chart whose points have not reached the console yet: ask again in a few seconds.
document.addEventListener("error", (event) => {
  const img = event.target;
  if (!(img instanceof HTMLImageElement) || !img.classList.contains("chart")) return;
  img.classList.add("waiting");
  const tries = Number(img.dataset.tries || 0);
  if (tries >= 60) return;
  img.dataset.tries = String(tries + 1);
  const base = img.src.split("?")[0];
  setTimeout(() => { img.src = base + "?try=" + (tries + 1); }, 5000);
}, true);
document.addEventListener("load", (event) => {
  if (event.target instanceof HTMLImageElement) event.target.classList.remove("waiting");
}, true);

document.addEventListener("DOMContentLoaded", live);
