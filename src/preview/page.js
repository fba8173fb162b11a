// The preview page's behaviour. Served as its own file so that the page's
// Content-Security-Policy can forbid inline script (script-src 'self').
"use strict";
const $ = (id) => document.getElementById(id);
let profiles = [];
let saved = "";
let timer = null;
let generation = 0;

// How each channel is named and drawn. Class names come only from these tables, never
// from an answer: an unknown value gets the fallback.
const CHANNELS = new Map([
  ["dingtalk", { label: "钉钉", badge: "channel channel-dingtalk", look: "" }],
  ["wecom", { label: "企业微信", badge: "channel channel-wecom", look: "look-wecom" }],
  ["feishu", { label: "飞书", badge: "channel channel-feishu", look: "look-feishu" }],
]);

// Feishu's card header templates; an unknown one is drawn grey.
const CARD_HEADERS = new Map(
  ["blue", "wathet", "turquoise", "green", "yellow", "orange", "red", "carmine", "violet",
    "purple", "indigo", "grey", "default"].map((name) => [name, "card-header card-" + name]),
);

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(url + ": HTTP " + response.status);
  return response.json();
}

function currentProfile() {
  return profiles.find((p) => p.name === $("profile").value);
}

function loadProfile() {
  const profile = currentProfile();
  if (!profile) return;
  const template = profile.template || {};
  saved = template.source || "";
  $("template").value = saved;
  $("template-name").textContent = template.name ? "(" + template.name + ")" : "";
  $("file-hint").textContent = template.file
    ? template.file
    : "模板目录中的 " + (template.name || "") + "（当前使用内置模板：把它复制到模板目录并修改）";
  schedule(0);
}

function schedule(delay) {
  clearTimeout(timer);
  timer = setTimeout(render, delay);
}

async function render() {
  const profile = currentProfile();
  if (!profile) return;
  const request = {};
  if ($("template").value !== saved) request.template = $("template").value;
  if ($("sample").value === "custom") {
    try {
      request.payload = JSON.parse($("payload").value || "{}");
    } catch (e) {
      showError("payload 不是合法的 JSON: " + e.message);
      return;
    }
  } else {
    request.sample = $("sample").value;
  }
  const mine = ++generation;
  const response = await fetch("/preview/" + encodeURIComponent(profile.name), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  });
  const answer = await response.json();
  if (mine !== generation) return; // a newer edit is on its way
  if (!response.ok) {
    const where = answer.template ? answer.template + (answer.line ? ":" + answer.line : "") + ": " : "";
    showError(where + (answer.message || answer.error));
    return;
  }
  showError("");
  $("raw").textContent = answer.text;
  // Sanitised on the server: only each client's own syntax becomes tags (fixed tags, fixed
  // class names, links only to web URLs); the CSP would stop any script that slipped through.
  $("rendered").innerHTML = answer.html;
  $("title").textContent = answer.title ?? "";
  $("msgtype").textContent = "(" + answer.msgtype + ")";
  showChannel(answer);
  const bytes = $("bytes");
  bytes.textContent = answer.bytes + " / " + answer.limit + " 字节" + (answer.omitted ? "，省略了 " + answer.omitted + " 条告警" : "");
  bytes.className = answer.omitted ? "over" : "";
  const list = $("warnings");
  list.replaceChildren(...(answer.warnings ?? []).map((w) => {
    const item = document.createElement("li");
    item.textContent = w;
    return item;
  }));
  // Who the message mentions and why: text only.
  const mentions = Array.isArray(answer.mentions) ? answer.mentions : [];
  $("mentions").replaceChildren(...mentions.map((m) => {
    const item = document.createElement("li");
    item.textContent = String(m?.who ?? "") + " — " + String(m?.why ?? "");
    return item;
  }));
  $("mentions-label").hidden = mentions.length === 0;
  document.body.dataset.rendered = String(mine);
}

// The badge, the headings and the frame of the message: a DingTalk bubble with its
// markdown title, a WeCom bubble, or a Feishu card with its coloured header and buttons.
function showChannel(answer) {
  const known = CHANNELS.get(answer.channel ?? "dingtalk");
  const channel = known ?? { label: String(answer.channel), badge: "channel channel-unknown", look: "" };
  const badge = $("channel");
  badge.textContent = channel.label;
  badge.className = channel.badge;
  $("raw-label").textContent = "发送给" + channel.label + "的文本";
  $("look-label").textContent = channel.label + "群里的样子";
  const card = answer.msgtype === "card" && answer.card && typeof answer.card === "object" ? answer.card : null;
  $("chat").className = ["chat", channel.look].filter(Boolean).join(" ");
  $("bubble").className = card ? "bubble card" : "bubble";
  const dingtalkTitle = (answer.channel ?? "dingtalk") === "dingtalk" && (answer.msgtype === "markdown" || answer.msgtype === "action_card");
  $("bubble-title").textContent = dingtalkTitle ? answer.title : "";
  const header = $("card-header");
  header.hidden = !card;
  header.className = (card && CARD_HEADERS.get(card.template)) || CARD_HEADERS.get("grey");
  $("card-title").textContent = card ? String(card.title ?? "") : "";
  // A Feishu card's buttons, or a DingTalk action card's ({title, url}).
  const actionButtons = answer.msgtype === "action_card" && Array.isArray(answer.buttons)
    ? answer.buttons.map((b) => cardButton({ text: b?.title, url: b?.url }))
    : [];
  const buttons = card && Array.isArray(card.buttons) ? card.buttons.map(cardButton) : actionButtons;
  $("card-buttons").replaceChildren(...buttons);
  $("card-buttons").hidden = buttons.length === 0;
}

// A card button: a link when its URL is a web URL (what Feishu opens), else shown
// disabled, with its text as text either way.
function cardButton(button) {
  const url = webUrl(button?.url);
  const element = document.createElement(url ? "a" : "span");
  element.textContent = String(button?.text ?? "");
  if (url) {
    element.className = "card-button";
    element.href = url;
    element.target = "_blank";
    element.rel = "noopener noreferrer";
  } else {
    element.className = "card-button disabled";
    element.setAttribute("aria-disabled", "true");
    element.title = "不是 http/https 链接：飞书里点不开";
  }
  return element;
}

// The URL as the browser reads it, when it is http or https; otherwise null.
function webUrl(value) {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function showError(message) {
  $("error").textContent = message;
}

async function start() {
  const data = await getJSON("/preview/profiles");
  profiles = data.profiles;
  for (const profile of profiles) {
    const option = document.createElement("option");
    option.value = profile.name;
    const channel = CHANNELS.get(profile.channel);
    option.textContent = profile.name + " (" + profile.message + ")" + (channel ? " " + channel.label : "");
    $("profile").append(option);
  }
  const samples = await getJSON("/preview/samples");
  $("payload").value = JSON.stringify(samples.group, null, 2);
  $("profile").addEventListener("change", loadProfile);
  $("sample").addEventListener("change", () => {
    $("payload").hidden = $("sample").value !== "custom";
    schedule(0);
  });
  $("template").addEventListener("input", () => schedule(250));
  $("payload").addEventListener("input", () => schedule(400));
  $("reset").addEventListener("click", () => { $("template").value = saved; schedule(0); });
  loadProfile();
}

start().catch((e) => showError(String(e)));
