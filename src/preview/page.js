// The preview page's behaviour. Served as its own file so that the page's
// Content-Security-Policy can forbid inline script (script-src 'self').
"use strict";
const $ = (id) => document.getElementById(id);
let profiles = [];
let saved = "";
let timer = null;
let generation = 0;

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
  // Sanitised on the server: only <font color> passes, links and images only to http(s) and
  // dingtalk URLs; the CSP would stop any script that slipped through.
  $("rendered").innerHTML = answer.html;
  $("title").textContent = answer.title;
  $("bubble-title").textContent = answer.msgtype === "markdown" ? answer.title : "";
  $("msgtype").textContent = "(" + answer.msgtype + ")";
  const bytes = $("bytes");
  bytes.textContent = answer.bytes + " / " + answer.limit + " 字节" + (answer.omitted ? "，省略了 " + answer.omitted + " 条告警" : "");
  bytes.className = answer.omitted ? "over" : "";
  const list = $("warnings");
  list.replaceChildren(...answer.warnings.map((w) => {
    const item = document.createElement("li");
    item.textContent = w;
    return item;
  }));
  document.body.dataset.rendered = String(mine);
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
    option.textContent = profile.name + " (" + profile.message + ")";
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
