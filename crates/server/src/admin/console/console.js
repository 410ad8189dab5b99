// Paddock's web console: reads the AdminServer's commands and /api/node, writes through
// /api/write. Everything shown from the server (znode names, data, ACL ids) goes through
// esc() or textContent: znode contents are other people's input.
"use strict";

const PAGE = 100;
const view = document.getElementById("view");
const statusLine = document.getElementById("status");
let chartTimer = null;

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function credentials() { return sessionStorage.getItem("paddock-digest"); }

function headers() {
  const h = {};
  const c = credentials();
  if (c) h["Authorization"] = "digest " + c;
  return h;
}

function say(text, kind) {
  statusLine.textContent = text || "";
  statusLine.className = kind || "";
}

async function get(url) {
  const r = await fetch(url, { headers: headers() });
  let body = null;
  try { body = await r.json(); } catch (e) { body = { error: "not JSON (HTTP " + r.status + ")" }; }
  return { status: r.status, body };
}

async function command(name) { return (await get("/commands/" + name)).body; }

async function write(req) {
  const r = await fetch("/api/write", { method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, headers()), body: JSON.stringify(req) });
  let body = {};
  try { body = await r.json(); } catch (e) { body = { error: "HTTP " + r.status }; }
  if (r.ok) say(req.op + " " + req.path + ": done", "ok");
  else say(req.op + " " + req.path + " refused: " + (body.error || r.status), "error");
  return r.ok;
}

// A tree view's address: each name percent-encoded, so that names with %, ? or # survive the
// router (which splits off ?offset= and decodes the rest).
function treeHref(path, offset) {
  const enc = path === "/" ? "/" : path.split("/").map(encodeURIComponent).join("/");
  return "#/tree" + enc + (offset ? "?offset=" + offset : "");
}

function hex(z) { return typeof z === "number" ? "0x" + z.toString(16) : esc(z); }

function table(cols, rows) {
  return "<table><tr>" + cols.map((c) => "<th>" + esc(c) + "</th>").join("") + "</tr>" +
    rows.map((r) => "<tr>" + r.map((v) => "<td>" + v + "</td>").join("") + "</tr>").join("") + "</table>";
}

function cards(pairs) {
  return '<div class="cards">' + pairs.map(([k, v]) => '<div class="card"><div class="k">' + esc(k) + '</div><div class="v">' + esc(v) + "</div></div>").join("") + "</div>";
}

function membersTable(m) {
  if (!m || !m.members) return '<p class="muted">no ensemble information</p>';
  return table(["id", "host", "type", "role", "zxid", "lag", "last contact"], m.members.map((x) => [
    esc(x.id), esc(x.host), esc(x.type), esc(x.role), esc(x.zxid ?? "–"),
    esc(x.lag ?? "–"), x.last_contact_ms === undefined ? "–" : esc(x.last_contact_ms + " ms")]));
}

// ---- pages --------------------------------------------------------------------------

async function overview() {
  const [mntr, members, root] = await Promise.all([command("monitor"), command("members"), get("/api/node?path=/&limit=" + PAGE)]);
  let html = "<h2>Ensemble at a glance</h2>" + cards([
    ["mode", mntr.server_state], ["znodes", mntr.znode_count], ["sessions", mntr.global_sessions],
    ["connections", mntr.num_alive_connections], ["watches", mntr.watch_count],
    ["outstanding", mntr.outstanding_requests], ["p99 read (ms)", mntr.p99_readlatency],
    ["p99 write (ms)", mntr.p99_updatelatency], ["last zxid", members.last_zxid],
    ["uptime (s)", Math.round(mntr.uptime / 1000)]]);
  html += "<h3>Members</h3>" + membersTable(members);
  html += "<h3>Children of /</h3>";
  if (root.status !== 200) html += '<p class="muted">' + esc(root.body.error) + "</p>";
  else html += '<ul id="root-children">' + root.body.children.map((c) => '<li><a href="' + esc(treeHref(join("/", c.name))) + '" data-name="' + esc(c.name) + '">' + esc(c.name) + "</a></li>").join("") + "</ul>";
  view.innerHTML = html;
}

function join(parent, name) { return parent === "/" ? "/" + name : parent + "/" + name; }

function decode(b64) {
  if (b64 === null || b64 === undefined) return null;
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

function asText(bytes) { return new TextDecoder("utf-8", { fatal: false }).decode(bytes); }

function asHex(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = Array.from(bytes.slice(i, i + 16));
    lines.push(i.toString(16).padStart(8, "0") + "  " + row.map((b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(48) + " " + row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join(""));
  }
  return lines.join("\n");
}

function asJson(bytes) {
  try { return JSON.stringify(JSON.parse(asText(bytes)), null, 2); } catch (e) { return "(not JSON: " + e.message + ")"; }
}

async function tree(path, offset) {
  path = path || "/";
  const r = await get("/api/node?path=" + encodeURIComponent(path) + "&offset=" + offset + "&limit=" + PAGE);
  const n = r.body;
  const parts = path.split("/").filter((p) => p);
  let crumbs = '<a href="#/tree/">/</a>';
  let acc = "";
  for (const p of parts) { acc += "/" + p; crumbs += ' <a href="' + esc(treeHref(acc)) + '">' + esc(p) + "</a> /"; }
  let html = '<h2 class="crumbs">' + crumbs + "</h2>";
  if (r.status !== 200 && !n.stat) { view.innerHTML = html + '<p id="node-error" class="muted">' + esc(n.error) + "</p>"; return; }
  const total = n.stat.numChildren;
  html += '<div class="tree"><div class="panel"><h3>Children (' + esc(total) + ")</h3>";
  if (n.children) {
    html += '<ul id="children">' + n.children.map((c) => '<li><a href="' + esc(treeHref(join(path, c.name))) + '" data-name="' + esc(c.name) + '">' + esc(c.name) + '</a><span class="count">' + (c.num_children ? esc(c.num_children) : "") + "</span></li>").join("") + "</ul>";
    const next = offset + PAGE < total, prev = offset > 0;
    html += '<div class="row">' + (prev ? '<a href="' + esc(treeHref(path, offset - PAGE)) + '">previous</a>' : "") +
      '<span class="muted">' + (total ? (offset + 1) + "–" + Math.min(offset + PAGE, total) + " of " + total : "none") + "</span>" +
      (next ? '<a id="next-page" href="' + esc(treeHref(path, offset + PAGE)) + '">next</a>' : "") + "</div>";
  }
  html += '<h4>Create a child</h4><div class="row"><input id="child-name" placeholder="name"><input id="child-data" placeholder="data"><button id="create-button">Create</button></div>';
  html += '</div><div class="panel"><h3>Data</h3>';
  const bytes = decode(n.data_base64);
  if (n.error) html += '<p class="muted">' + esc(n.error) + "</p>";
  html += '<div class="tabs row"><button data-tab="text" class="on">text</button><button data-tab="json">JSON</button><button data-tab="hex">hex</button></div>';
  html += '<pre id="data-text"></pre>';
  html += '<textarea id="edit-data"></textarea><div class="row"><button id="save-button">Save (version ' + esc(n.stat.version) + ')</button><button id="delete-button">Delete</button></div>';
  html += "<h3>Stat</h3>" + table(["field", "value"], Object.entries(n.stat).map(([k, v]) => [esc(k), /zxid|Owner/.test(k) ? hex(v) : /time/.test(k) ? esc(new Date(v).toISOString()) : esc(v)]));
  html += '<h3>ACL</h3><p>You (<span id="identities">' + esc((n.identities || []).join(", ")) + '</span>) may: <b id="may">' + esc(n.may || "nothing") + "</b></p>";
  html += '<table id="acl"><tr><th>scheme</th><th>id</th><th>perms</th><th></th></tr>' + (n.acl || []).map((a) => aclRow(a.scheme, a.id, a.perms)).join("") + "</table>";
  html += '<div class="row"><button id="acl-add">Add entry</button><button id="acl-save">Set ACL</button></div></div></div>';
  view.innerHTML = html;
  const pre = document.getElementById("data-text");
  const show = (tab) => {
    pre.textContent = bytes === null ? "(null)" : tab === "hex" ? asHex(bytes) : tab === "json" ? asJson(bytes) : asText(bytes);
    document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === tab));
  };
  show("text");
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
  document.getElementById("edit-data").value = bytes === null ? "" : asText(bytes);
  document.getElementById("save-button").onclick = async () => {
    if (await write({ op: "set", path, data: document.getElementById("edit-data").value, version: n.stat.version })) route();
  };
  document.getElementById("delete-button").onclick = async () => {
    const parent = path.substring(0, path.lastIndexOf("/")) || "/";
    if (await write({ op: "delete", path, version: n.stat.version })) location.hash = treeHref(parent);
  };
  document.getElementById("create-button").onclick = async () => {
    const name = document.getElementById("child-name").value;
    if (await write({ op: "create", path: join(path, name), data: document.getElementById("child-data").value })) route();
  };
  const aclTable = document.getElementById("acl");
  aclTable.addEventListener("click", (e) => { if (e.target.classList.contains("acl-remove")) e.target.closest("tr").remove(); });
  document.getElementById("acl-add").onclick = () => aclTable.insertAdjacentHTML("beforeend", aclRow("digest", "", "r"));
  document.getElementById("acl-save").onclick = async () => {
    const acl = Array.from(aclTable.querySelectorAll("tr.acl")).map((tr) => ({ scheme: tr.querySelector(".s").value, id: tr.querySelector(".i").value, perms: tr.querySelector(".p").value }));
    if (await write({ op: "setacl", path, acl, version: n.stat.aversion })) route();
  };
}

function aclRow(scheme, id, perms) {
  return '<tr class="acl"><td><input class="s" size="7" value="' + esc(scheme) + '"></td><td><input class="i" size="36" value="' + esc(id) + '"></td><td><input class="p" size="6" value="' + esc(perms) + '"></td><td><button class="acl-remove">remove</button></td></tr>';
}

async function sessions() {
  const [dump, watches] = await Promise.all([get("/commands/dump"), get("/commands/watches")]);
  if (dump.status === 403) { view.innerHTML = '<h2>Sessions</h2><p id="sessions-refused" class="muted">' + esc(dump.body.error) + "</p>"; return; }
  const eph = dump.body.session_id_to_ephemeral_paths || {};
  const w = (watches.body && watches.body.session_id_to_watched_paths) || {};
  const expiry = {};
  for (const [t, ids] of Object.entries(dump.body.expiry_time_to_session_ids || {})) for (const id of ids) expiry[id] = t;
  const ids = Array.from(new Set([...Object.keys(expiry), ...Object.keys(eph), ...Object.keys(w)]));
  view.innerHTML = "<h2>Sessions (" + ids.length + ")</h2>" + table(["session", "expires", "ephemerals", "watches"], ids.map((id) => [
    esc("0x" + BigInt(id).toString(16)), expiry[id] ? esc(new Date(Number(expiry[id])).toISOString()) : "–",
    esc((eph[id] || []).join(", ")), esc((w[id] || []).join(", "))]));
}

async function ensemble() {
  const [members, lead] = await Promise.all([command("members"), command("leader")]);
  let html = "<h2>Ensemble</h2>" + cards([["this server", members.server_id], ["mode", members.mode], ["leader", members.leader_id], ["last zxid", members.last_zxid]]);
  html += membersTable(members);
  if (!lead.is_leader && members.leader_id >= 0 && members.mode !== "standalone") html += '<p class="muted">Lag and last contact of every member are known to the leader (server ' + esc(members.leader_id) + "): open its console.</p>";
  view.innerHTML = html;
}

// ---- charts -------------------------------------------------------------------------

const SERIES = [
  ["throughput", "requests/s", (m, p, dt) => (p ? (m.packets_received - p.packets_received) / dt : null)],
  ["read latency", "p50 / p99 ms", (m) => [m.p50_readlatency, m.p99_readlatency]],
  ["write latency", "p50 / p99 ms", (m) => [m.p50_updatelatency, m.p99_updatelatency]],
  ["outstanding requests", "requests", (m) => m.outstanding_requests],
  ["fsync time", "ms per fsync", (m, p) => (p && m.cnt_fsynctime > p.cnt_fsynctime ? (m.sum_fsynctime - p.sum_fsynctime) / (m.cnt_fsynctime - p.cnt_fsynctime) : 0)],
];

function draw(canvas, title, unit, points) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#1d2733"; ctx.font = "13px system-ui";
  ctx.fillText(title + " (" + unit + ")", 8, 16);
  const vals = points.flatMap((p) => (Array.isArray(p) ? p : [p])).filter((v) => v !== null && v !== undefined);
  const top = Math.max(0, ...vals);
  const max = top > 0 ? top * 1.1 : 1;
  ctx.fillStyle = "#66707c"; ctx.fillText(top > 0 ? max.toPrecision(3) : "0", W - 60, 16);
  const lines = Array.isArray(points[points.length - 1]) ? points[points.length - 1].length : 1;
  const colors = ["#2f6f9f", "#d9822b"];
  for (let l = 0; l < lines; l++) {
    ctx.strokeStyle = colors[l]; ctx.beginPath();
    points.forEach((p, i) => {
      const v = Array.isArray(p) ? p[l] : p;
      if (v === null || v === undefined) return;
      const x = 8 + (i / 119) * (W - 16), y = H - 8 - (v / max) * (H - 32);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

async function charts() {
  view.innerHTML = '<h2>Live (every second, last two minutes)</h2><div class="charts">' + SERIES.map((s, i) => '<canvas id="chart' + i + '" width="440" height="180"></canvas>').join("") + "</div>";
  const hist = SERIES.map(() => []);
  let prev = null, prevAt = 0;
  const step = async () => {
    const m = await command("monitor");
    const now = Date.now() / 1000;
    SERIES.forEach(([title, unit, f], i) => {
      hist[i].push(f(m, prev, now - prevAt));
      if (hist[i].length > 120) hist[i].shift();
      const c = document.getElementById("chart" + i);
      if (c) draw(c, title, unit, hist[i]);
    });
    prev = m; prevAt = now;
  };
  await step();
  chartTimer = setInterval(step, 1000);
}

// ---- routing and login ----------------------------------------------------------------

async function route() {
  if (chartTimer) { clearInterval(chartTimer); chartTimer = null; }
  const hash = location.hash || "#/";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", hash.startsWith(a.getAttribute("href")) && (a.getAttribute("href") !== "#/" || hash === "#/")));
  try {
    if (hash.startsWith("#/tree")) {
      const [p, q] = hash.substring("#/tree".length).split("?");
      const offset = q ? parseInt(new URLSearchParams(q).get("offset") || "0", 10) : 0;
      await tree(decodeURIComponent(p || "/") || "/", offset);
    } else if (hash === "#/sessions") await sessions();
    else if (hash === "#/ensemble") await ensemble();
    else if (hash === "#/charts") await charts();
    else await overview();
  } catch (e) {
    say("cannot reach the server: " + e.message, "error");
  }
  const m = await command("is_read_only").catch(() => null);
  const s = await command("server_stats").catch(() => null);
  document.getElementById("mode").textContent = s && s.server_stats ? s.server_stats.server_state : m ? "?" : "down";
}

function showLogin() {
  const c = credentials();
  document.getElementById("whoami").textContent = c ? "logged in as " + c.split(":")[0] : "read-only";
  if (!c) {
    // A client certificate shown over HTTPS is a login too: the server edits as its x509 identity.
    get("/api/node?path=/&limit=0").then((r) => {
      const ids = (r.body && r.body.identities) || [];
      const cert = ids.find((i) => i.startsWith("x509:"));
      if (cert && !credentials()) document.getElementById("whoami").textContent = "certificate " + cert.substring(5);
    }).catch(() => {});
  }
  document.getElementById("login-user").hidden = !!c;
  document.getElementById("login-password").hidden = !!c;
  document.getElementById("login-button").hidden = !!c;
  document.getElementById("logout-button").hidden = !c;
}

document.getElementById("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const u = document.getElementById("login-user").value, p = document.getElementById("login-password").value;
  if (!u) return;
  // Kept for this tab only; sent as ZooKeeper 3.9's AdminServer takes a digest identity.
  sessionStorage.setItem("paddock-digest", u + ":" + p);
  showLogin();
  say("logged in as " + u + " (what you may do is what the ACLs grant digest:" + u + ")", "ok");
  route();
});
document.getElementById("logout-button").addEventListener("click", () => {
  sessionStorage.removeItem("paddock-digest");
  document.getElementById("login-user").value = "";
  document.getElementById("login-password").value = "";
  showLogin();
  say("logged out", "ok");
  route();
});
window.addEventListener("hashchange", () => { say(""); route(); });
showLogin();
route();
