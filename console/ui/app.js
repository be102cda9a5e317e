// Zombi's web console. Plain browser JavaScript, no build step and no
// library: it reads the server's own routes (the Iceberg REST catalog,
// the ingest API and /v1/zombi/*) with the token the user signs in with,
// and draws what they answer. Every value from the server reaches the
// page as text (textContent), never as markup.
'use strict';

const US = '\u001f'; // namespace levels in a catalog path
const POLL_MS = 1000; // the ingest charts' refresh
const CHART_POINTS = 120; // two minutes at one point a second
const TAIL_ROWS = 100;

const state = {
  token: sessionStorage.getItem('zombi.token') || '',
  // OAuth2 client credentials the user signed in with, kept in memory
  // only (a reload forgets them), to take a new token when one expires.
  client: null,
  who: null,
  // stop functions of the current page's timers and streams
  stops: [],
};

// ---- DOM helpers ----

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function table(headers, rows, opts = {}) {
  const head = h('tr', {}, headers.map((c) => h('th', { class: c.num ? 'num' : null, text: c.label || c })));
  const body = rows.map((r) => h('tr', { 'data-row': '' }, r.map((cell, i) => {
    const num = headers[i] && headers[i].num;
    return cell instanceof Node ? h('td', { class: num ? 'num' : null }, cell) : h('td', { class: num ? 'num' : null, text: cell ?? '' });
  })));
  return h('table', { class: 'grid', id: opts.id }, h('thead', {}, head), h('tbody', {}, body));
}

const main = () => document.getElementById('main');

function show(...nodes) {
  main().replaceChildren(...nodes.flat());
}

// ---- formatting ----

const nf = new Intl.NumberFormat('en-US');
function fmtInt(n) { return n === undefined || n === null || n === '' ? '' : nf.format(Number(n)); }
function fmtRate(n) { return n >= 100 ? nf.format(Math.round(n)) : (Math.round(n * 10) / 10).toString(); }
function fmtBytes(n) {
  n = Number(n || 0);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
}
function fmtTime(ms) { return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC'); }
function fmtSecs(s) {
  if (s === undefined || s === null) return '–';
  if (s < 1) return Math.round(s * 1000) + ' ms';
  if (s < 120) return s.toFixed(1) + ' s';
  return Math.round(s / 60) + ' min';
}

// ---- API ----

class APIError extends Error {
  constructor(status, message, type) { super(message); this.status = status; this.type = type; }
}

async function api(path, opts = {}, retried = false) {
  const headers = Object.assign({ Accept: 'application/json' }, opts.headers || {});
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  if (res.status === 401 && state.client && !retried) {
    // The token expired: take a new one with the same client, once.
    try {
      setToken(await clientToken(state.client.id, state.client.secret));
      return await api(path, opts, true);
    } catch (e) { /* fall through to the sign-in form */ }
  }
  if (res.status === 401) {
    showLogin(state.token ? 'The token was refused (expired or unknown). Sign in again.' : '');
    throw new APIError(401, 'sign in first', 'NotAuthorizedException');
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text, exactIntegers) : null; } catch (e) { body = null; }
  if (!res.ok) {
    const err = body && body.error ? body.error : { message: text || res.statusText, type: '' };
    throw new APIError(res.status, err.message, err.type);
  }
  return body;
}

// exactIntegers keeps integers beyond 2^53 (snapshot IDs are 64-bit) as
// their decimal text, which a JavaScript number would round.
function exactIntegers(key, value, context) {
  if (typeof value === 'number' && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)) return context.source;
  return value;
}

function nsPath(levels) { return levels.map(encodeURIComponent).join('%1F'); }
function nsName(levels) { return levels.join('.'); }
// The ingest API's name of a table: namespace.name.
function ingestRef(levels, name) { return encodeURIComponent(nsName(levels) + '.' + name); }

async function listAll(path, key) {
  const out = [];
  let token = '';
  for (let i = 0; i < 20; i++) { // at most 20 pages
    const sep = path.includes('?') ? '&' : '?';
    const page = await api(path + (token ? sep + 'pageToken=' + encodeURIComponent(token) : ''));
    out.push(...(page[key] || []));
    token = page['next-page-token'];
    if (!token) break;
  }
  return out;
}

// ---- who the user is ----

const ROLE_RANK = { reader: 1, writer: 2, admin: 3 };

function roleIn(levels) {
  let best = 0;
  for (const g of (state.who && state.who.grants) || []) {
    const gl = g.namespace ? g.namespace.split('.') : [];
    if (gl.length > levels.length) continue;
    if (gl.every((l, i) => l === levels[i])) best = Math.max(best, ROLE_RANK[g.role] || 0);
  }
  return best;
}

function showLogin(message) {
  document.getElementById('login').hidden = false;
  document.getElementById('login-error').textContent = message || '';
  document.getElementById('login-token').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const token = document.getElementById('login-token').value.trim();
  const client = document.getElementById('login-client').value.trim();
  const secret = document.getElementById('login-secret').value;
  const errEl = document.getElementById('login-error');
  errEl.textContent = '';
  let got = token;
  state.client = null;
  if (!got && client) {
    try {
      got = await clientToken(client, secret);
    } catch (e) {
      errEl.textContent = e.message;
      return;
    }
    state.client = { id: client, secret };
  }
  if (!got) { errEl.textContent = 'Give a bearer token or a client ID and secret.'; return; }
  state.token = got;
  try {
    await loadWho();
  } catch (e) {
    state.token = '';
    state.client = null;
    errEl.textContent = e.status === 401 ? 'The server does not know this token.' : e.message;
    return;
  }
  setToken(got);
  document.getElementById('login').hidden = true;
  document.getElementById('login-form').reset();
  route();
}

// clientToken asks /v1/oauth/tokens for a token of an OAuth2 client.
async function clientToken(id, secret) {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret, scope: 'catalog' });
  const res = await fetch('/v1/oauth/tokens', { method: 'POST', body: form });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access_token) {
    throw new Error('The server refused the client: ' + (body.error_description || body.error || res.status));
  }
  return body.access_token;
}

function setToken(token) {
  state.token = token;
  sessionStorage.setItem('zombi.token', token);
}

async function loadWho() {
  state.who = await api('/v1/zombi/whoami');
  document.getElementById('who').textContent = state.who.method === 'none' ? 'auth off' : state.who.name;
  document.getElementById('logout').hidden = state.who.method === 'none';
}

function signOut() {
  state.token = '';
  state.client = null;
  state.who = null;
  sessionStorage.removeItem('zombi.token');
  document.getElementById('who').textContent = '';
  delete document.getElementById('side').dataset.loaded;
  stopAll();
  show(h('p', { class: 'muted', text: 'Signed out.' }));
  document.getElementById('side').replaceChildren();
  showLogin('');
}

// ---- pages ----

function stopAll() {
  for (const stop of state.stops.splice(0)) stop();
}

function every(ms, fn) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    try { await fn(); } catch (e) { /* the next tick tries again; fn shows errors */ }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  state.stops.push(() => { stopped = true; clearTimeout(timer); });
}

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return parts.filter((p, i) => p !== '' || i === 0);
}

async function route() {
  stopAll();
  if (!state.who) {
    try { await loadWho(); } catch (e) { if (e.status !== 401) show(errorBox(e)); return; }
  }
  const [page, a, b, tab] = parseHash();
  // The catalog page reloads the tree: namespaces made since then show.
  if (!page) delete document.getElementById('side').dataset.loaded;
  renderSide();
  try {
    switch (page) {
      case 'ns': return await pageNamespace(a.split(US));
      case 't': return await pageTable(a.split(US), b, tab || 'overview');
      case 'v': return await pageView(a.split(US), b);
      case 'nodes': return await pageNodes();
      default: return await pageHome();
    }
  } catch (e) {
    if (e.status !== 401) show(errorBox(e));
  }
}

function errorBox(e) {
  return h('div', { class: 'error', role: 'alert' }, (e.status ? e.status + ' ' : '') + (e.type ? e.type + ': ' : '') + e.message);
}

function nsHash(levels) { return '#/ns/' + encodeURIComponent(levels.join(US)); }
function tableHash(levels, name, tab) { return '#/t/' + encodeURIComponent(levels.join(US)) + '/' + encodeURIComponent(name) + (tab ? '/' + tab : ''); }
function viewHash(levels, name) { return '#/v/' + encodeURIComponent(levels.join(US)) + '/' + encodeURIComponent(name); }

// The namespace tree: top-level namespaces, each opened on a click.
async function renderSide() {
  const side = document.getElementById('side');
  if (side.dataset.loaded) return;
  side.dataset.loaded = '1';
  const list = h('ul', { id: 'ns-tree' });
  side.replaceChildren(h('div', { class: 'muted', text: 'Namespaces' }), list);
  await fillTree(list, []);
}

async function fillTree(ul, parent) {
  let nss;
  try {
    nss = await listAll('/v1/namespaces' + (parent.length ? '?parent=' + nsPath(parent) : ''), 'namespaces');
  } catch (e) {
    ul.replaceChildren(h('li', { class: 'error', text: e.message }));
    return;
  }
  if (!nss.length && !parent.length) ul.replaceChildren(h('li', { class: 'muted', text: 'none yet' }));
  for (const levels of nss) {
    const sub = h('ul', { hidden: true });
    const toggle = h('span', { class: 'toggle', text: '▸', title: 'nested namespaces' });
    toggle.addEventListener('click', async () => {
      if (sub.hidden && !sub.dataset.loaded) { sub.dataset.loaded = '1'; await fillTree(sub, levels); }
      sub.hidden = !sub.hidden;
      toggle.textContent = sub.hidden ? '▸' : '▾';
    });
    ul.append(h('li', {}, toggle, h('a', { href: nsHash(levels), 'data-ns': nsName(levels), text: levels[levels.length - 1] }), sub));
  }
}

async function pageHome() {
  const nss = await listAll('/v1/namespaces', 'namespaces');
  show(
    h('h1', { text: 'Catalog' }),
    h('p', { class: 'muted', text: 'Namespaces at the top level. Pick one to see its tables and views.' }),
    table(['Namespace'], nss.map((l) => [h('a', { href: nsHash(l), text: nsName(l) })]), { id: 'namespaces' }),
  );
}

async function pageNamespace(levels) {
  const [props, tables, views] = await Promise.all([
    api('/v1/namespaces/' + nsPath(levels)),
    listAll('/v1/namespaces/' + nsPath(levels) + '/tables', 'identifiers'),
    listAll('/v1/namespaces/' + nsPath(levels) + '/views', 'identifiers').catch(() => []),
  ]);
  const propRows = Object.entries(props.properties || {}).sort();
  show(
    h('div', { class: 'crumbs' }, h('a', { href: '#/', text: 'Catalog' }), ' / ', nsName(levels)),
    h('h1', { text: 'Namespace ' + nsName(levels) }),
    h('h2', { text: 'Tables (' + tables.length + ')' }),
    tables.length ? table(['Table'], tables.map((t) => [h('a', { href: tableHash(levels, t.name), 'data-table': t.name, text: t.name })]), { id: 'tables' })
      : h('p', { class: 'muted', text: 'No tables.' }),
    h('h2', { text: 'Views (' + views.length + ')' }),
    views.length ? table(['View'], views.map((v) => [h('a', { href: viewHash(levels, v.name), text: v.name })]), { id: 'views' })
      : h('p', { class: 'muted', text: 'No views.' }),
    h('h2', { text: 'Properties' }),
    propRows.length ? table(['Key', 'Value'], propRows) : h('p', { class: 'muted', text: 'None.' }),
  );
}

const TABS = [['overview', 'Overview'], ['snapshots', 'Snapshots'], ['files', 'Files'], ['ingest', 'Ingest'], ['tail', 'Live tail']];

async function pageTable(levels, name, tab) {
  const loaded = await api('/v1/namespaces/' + nsPath(levels) + '/tables/' + encodeURIComponent(name));
  const meta = loaded.metadata;
  const head = [
    h('div', { class: 'crumbs' }, h('a', { href: '#/', text: 'Catalog' }), ' / ', h('a', { href: nsHash(levels), text: nsName(levels) }), ' / ', name),
    h('h1', { text: nsName(levels) + '.' + name }),
    h('nav', { class: 'tabs' }, TABS.map(([id, label]) => h('a', { href: tableHash(levels, name, id), class: id === tab ? 'active' : null, 'data-tab': id, text: label }))),
  ];
  const body = h('div', { id: 'tab-' + tab });
  show(head, body);
  switch (tab) {
    case 'snapshots': return renderSnapshots(body, meta);
    case 'files': return renderFiles(body, levels, name);
    case 'ingest': return renderIngest(body, levels, name, meta);
    case 'tail': return renderTail(body, levels, name);
    default: return renderOverview(body, meta, loaded);
  }
}

// Schema fields flattened, nested ones indented.
function schemaRows(fields, depth, out) {
  for (const f of fields || []) {
    const t = f.type;
    const typeName = typeof t === 'string' ? t : t.type === 'struct' ? 'struct' : t.type === 'list' ? 'list<' + typeText(t.element) + '>' : t.type === 'map' ? 'map<' + typeText(t.key) + ', ' + typeText(t.value) + '>' : JSON.stringify(t);
    out.push([String(f.id), '\u00a0'.repeat(depth * 3) + f.name, typeName, f.required ? 'required' : 'optional', f.doc || '']);
    if (typeof t === 'object' && t.type === 'struct') schemaRows(t.fields, depth + 1, out);
    if (typeof t === 'object' && t.type === 'list' && typeof t.element === 'object' && t.element.type === 'struct') schemaRows(t.element.fields, depth + 1, out);
  }
  return out;
}
function typeText(t) { return typeof t === 'string' ? t : t.type; }

function fieldName(schema, id) {
  const walk = (fields, prefix) => {
    for (const f of fields || []) {
      if (f.id === id) return prefix + f.name;
      if (typeof f.type === 'object' && f.type.type === 'struct') {
        const n = walk(f.type.fields, prefix + f.name + '.');
        if (n) return n;
      }
    }
    return null;
  };
  return walk(schema.fields, '') || '#' + id;
}

function currentSchema(meta) {
  return (meta.schemas || []).find((s) => s['schema-id'] === meta['current-schema-id']) || { fields: [] };
}

function renderOverview(body, meta, loaded) {
  const schema = currentSchema(meta);
  const spec = (meta['partition-specs'] || []).find((s) => s['spec-id'] === meta['default-spec-id']) || { fields: [] };
  const order = (meta['sort-orders'] || []).find((s) => s['order-id'] === meta['default-sort-order-id']) || { fields: [] };
  const cur = (meta.snapshots || []).find((s) => s['snapshot-id'] === meta['current-snapshot-id']);
  const sum = (cur && cur.summary) || {};
  body.append(
    h('div', { class: 'tiles' },
      tile('Records', fmtInt(sum['total-records'] || 0), 'total-records'),
      tile('Data files', fmtInt(sum['total-data-files'] || 0), 'total-data-files'),
      tile('Size', fmtBytes(sum['total-files-size'] || 0), 'total-files-size'),
      tile('Snapshots', fmtInt((meta.snapshots || []).length), 'snapshots'),
      tile('Format', 'v' + meta['format-version'], 'format-version')),
    h('p', { class: 'muted' }, 'Location ', h('span', { class: 'code', text: meta.location }), ' · UUID ', h('span', { class: 'code', text: meta['table-uuid'] })),
    h('h2', { text: 'Schema ' + schema['schema-id'] }),
    table(['ID', 'Column', 'Type', 'Required', 'Doc'], schemaRows(schema.fields, 0, []), { id: 'schema' }),
    h('h2', { text: 'Partition spec ' + spec['spec-id'] }),
    spec.fields.length ? table(['Field', 'Source', 'Transform'], spec.fields.map((f) => [f.name, fieldName(schema, f['source-id']), f.transform]), { id: 'partition-spec' })
      : h('p', { class: 'muted', id: 'partition-spec', text: 'Unpartitioned.' }),
    h('h2', { text: 'Sort order ' + order['order-id'] }),
    order.fields.length ? table(['Source', 'Transform', 'Direction', 'Nulls'], order.fields.map((f) => [fieldName(schema, f['source-id']), f.transform, f.direction, f['null-order']]), { id: 'sort-order' })
      : h('p', { class: 'muted', id: 'sort-order', text: 'Unsorted.' }),
    h('h2', { text: 'Properties' }),
    table(['Key', 'Value'], Object.entries(meta.properties || {}).sort(), { id: 'properties' }),
  );
}

function tile(label, value, id) {
  return h('div', { class: 'tile', 'data-tile': id }, h('div', { class: 'label', text: label }), h('div', { class: 'value', text: value }));
}

// Who made a snapshot, from what its summary says.
function committer(summary) {
  summary = summary || {};
  for (const k of Object.keys(summary)) {
    if (k.startsWith('zombi.watermark.')) return { kind: 'flusher', text: 'flusher' };
  }
  if (summary['zombi.compaction.node']) return { kind: 'compaction', text: 'compaction' };
  if (summary['engine-name']) return { kind: 'engine', text: summary['engine-name'] + (summary['engine-version'] ? ' ' + summary['engine-version'] : '') };
  if (summary['spark.app.id']) return { kind: 'engine', text: 'spark' };
  if (summary['trino_query_id']) return { kind: 'engine', text: 'trino' };
  return { kind: 'client', text: 'a client' };
}

const KIND_COLOR = { flusher: '#2e9b5f', compaction: '#c7772a', engine: '#2f6fbd', client: '#66707c' };

function renderSnapshots(body, meta) {
  const snaps = [...(meta.snapshots || [])].sort((a, b) => b['timestamp-ms'] - a['timestamp-ms']);
  if (!snaps.length) { body.append(h('p', { class: 'muted', text: 'No snapshots yet.' })); return; }
  // A strip: total records over time, a dot per snapshot coloured by who made it.
  const W = 900, H = 90, P = 6;
  const t0 = snaps[snaps.length - 1]['timestamp-ms'], t1 = Math.max(snaps[0]['timestamp-ms'], t0 + 1);
  const maxRec = Math.max(1, ...snaps.map((s) => Number((s.summary || {})['total-records'] || 0)));
  const strip = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'strip', role: 'img', 'aria-label': 'total records per snapshot over time', preserveAspectRatio: 'none' });
  strip.style.width = '100%';
  strip.style.height = H + 'px';
  const xy = (s) => [P + (W - 2 * P) * (s['timestamp-ms'] - t0) / (t1 - t0), H - P - (H - 2 * P) * Number((s.summary || {})['total-records'] || 0) / maxRec];
  const pts = [...snaps].reverse().map(xy);
  strip.append(svg('polyline', { points: pts.map((p) => p.join(',')).join(' '), fill: 'none', stroke: '#aab4c0', 'stroke-width': 1.5 }));
  for (const s of snaps) {
    const [x, y] = xy(s);
    const c = svg('circle', { cx: x, cy: y, r: 3.5, fill: KIND_COLOR[committer(s.summary).kind] });
    c.append(svg('title', {}));
    c.firstChild.textContent = fmtTime(s['timestamp-ms']) + ' ' + ((s.summary || {}).operation || '');
    strip.append(c);
  }
  const counts = {};
  for (const s of snaps) { const k = committer(s.summary).kind; counts[k] = (counts[k] || 0) + 1; }
  body.append(
    h('p', { class: 'muted', text: snaps.length + ' snapshots: ' + Object.entries(counts).map(([k, n]) => n + ' by ' + k).join(', ') + '. Newest first.' }),
    h('div', { class: 'chart' }, h('h3', { text: 'Total records over time' }), strip,
      h('div', { class: 'legend' }, Object.keys(KIND_COLOR).map((k) => h('span', {}, h('span', { class: 'swatch', 'data-kind': k }), k)))),
  );
  for (const sw of body.querySelectorAll('.swatch')) sw.style.background = KIND_COLOR[sw.dataset.kind];
  const list = h('ol', { class: 'timeline', id: 'snapshots' });
  for (const s of snaps.slice(0, 200)) {
    const sum = s.summary || {};
    const who = committer(sum);
    const li = h('li', { 'data-snapshot': s['snapshot-id'], 'data-committer': who.kind, 'data-operation': sum.operation || '' },
      h('div', {}, h('b', { text: sum.operation || '?' }), ' ', h('span', { class: 'badge ' + who.kind, text: who.text }),
        s['snapshot-id'] === meta['current-snapshot-id'] ? h('span', { class: 'badge', text: 'current' }) : null),
      h('div', { class: 'when', text: fmtTime(s['timestamp-ms']) + ' · snapshot ' + s['snapshot-id'] + (s['parent-snapshot-id'] ? ' · parent ' + s['parent-snapshot-id'] : '') }),
      h('div', { text: changeText(sum) }));
    li.style.setProperty('--c', KIND_COLOR[who.kind]);
    list.append(li);
  }
  body.append(list);
  if (snaps.length > 200) body.append(h('p', { class: 'muted', text: 'The 200 newest of ' + snaps.length + ' are shown.' }));
}

function changeText(sum) {
  const parts = [];
  const add = (k, label) => { if (sum[k] && sum[k] !== '0') parts.push(label.replace('%', fmtInt(sum[k]))); };
  add('added-data-files', '+% files');
  add('deleted-data-files', '−% files');
  add('added-records', '+% rows');
  add('deleted-records', '−% rows');
  add('added-delete-files', '+% delete files');
  add('added-files-size', '+% bytes');
  if (sum['total-records'] !== undefined) parts.push(fmtInt(sum['total-records']) + ' rows in all');
  return parts.join(' · ');
}

// Partition values as a person reads them, by the field's transform.
function partText(v, transform) {
  if (v === null || v === undefined) return 'null';
  if (transform === 'hour' && typeof v === 'number') return new Date(v * 3600e3).toISOString().slice(0, 13).replace('T', ' ') + ':00';
  if (transform === 'day' && typeof v === 'number') return new Date(v * 86400e3).toISOString().slice(0, 10);
  if (transform === 'month' && typeof v === 'number') { const y = 1970 + Math.floor(v / 12); return y + '-' + String((v % 12) + 1).padStart(2, '0'); }
  if (transform === 'year' && typeof v === 'number') return String(1970 + v);
  return typeof v === 'string' ? v : JSON.stringify(v);
}

async function renderFiles(body, levels, name) {
  const st = await api('/v1/zombi/namespaces/' + nsPath(levels) + '/tables/' + encodeURIComponent(name) + '/files');
  body.append(h('div', { class: 'tiles' },
    tile('Data files', fmtInt(st.data_files), 'data-files'),
    tile('Data bytes', fmtBytes(st.data_bytes), 'data-bytes'),
    tile('Records', fmtInt(st.records), 'records'),
    tile('Delete files', fmtInt(st.delete_files), 'delete-files'),
    tile('Avg file', st.data_files ? fmtBytes(st.data_bytes / st.data_files) : '–', 'avg-file'),
    tile('Partitions', fmtInt(st.partitions.length) + (st.truncated ? '+' : ''), 'partitions')));
  if (!st.snapshot_id) { body.append(h('p', { class: 'muted', text: 'No snapshot yet: no files.' })); return; }
  const headers = (st.fields.length ? st.fields.map((f) => f.name + ' (' + f.transform + ')') : ['(unpartitioned)'])
    .concat([{ label: 'Data files', num: true }, { label: 'Bytes', num: true }, { label: 'Avg file', num: true }, { label: 'Records', num: true }, { label: 'Delete files', num: true }]);
  const rows = [...st.partitions].reverse().map((p) => (st.fields.length ? p.values.map((v, i) => partText(v, st.fields[i].transform)) : ['–'])
    .concat([fmtInt(p.data_files), fmtBytes(p.data_bytes), p.data_files ? fmtBytes(p.data_bytes / p.data_files) : '–', fmtInt(p.records), fmtInt(p.delete_files)]));
  body.append(h('h2', { text: 'By partition, newest first (snapshot ' + st.snapshot_id + ')' }), table(headers, rows, { id: 'partitions' }));
  if (st.truncated) body.append(h('p', { class: 'muted', text: 'Only the 500 last partitions are listed.' }));
}

// ---- charts ----

// A line chart of series [{name, color, values}] (null: no value); the
// legend shows each series' last value.
function chart(title, series, fmt) {
  const W = 420, H = 140, P = 4;
  const box = h('div', { class: 'chart', 'data-chart': title });
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  const legend = h('div', { class: 'legend' });
  box.append(h('h3', { text: title }), s, legend);
  const draw = () => {
    s.replaceChildren();
    const all = series.flatMap((x) => x.values.filter((v) => v !== null));
    const max = Math.max(1e-9, ...all) * 1.1;
    s.append(svg('line', { x1: 0, y1: H - P, x2: W, y2: H - P, stroke: '#dde2e8' }));
    legend.replaceChildren();
    // The x axis spans the points held, at least 30 (half a minute), so
    // that a new chart is not a sliver at its right edge.
    const span = Math.max(30, ...series.map((x) => x.values.length));
    for (const x of series) {
      const pts = [];
      x.values.forEach((v, i) => {
        if (v === null) return;
        pts.push(`${(W * (i + span - x.values.length) / (span - 1)).toFixed(1)},${(H - P - (H - 2 * P) * v / max).toFixed(1)}`);
      });
      s.append(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: x.color, 'stroke-width': 2, 'data-series': x.name }));
      const last = [...x.values].reverse().find((v) => v !== null);
      const sw = h('span', { class: 'swatch' });
      sw.style.background = x.color;
      legend.append(h('span', { 'data-series': x.name, 'data-last': last ?? '' }, sw, x.name + ' ', h('b', { text: last === undefined ? '–' : fmt(last) })));
    }
    box.dataset.points = String(Math.max(...series.map((x) => x.values.length)));
  };
  draw();
  return { el: box, draw };
}

function push(arr, v) {
  arr.push(v);
  if (arr.length > CHART_POINTS) arr.shift();
}

async function renderIngest(body, levels, name, meta) {
  const ref = ingestRef(levels, name);
  const admin = roleIn(levels) >= ROLE_RANK.admin;
  const acked = [], committed = [], backlog = [], p50 = [], p99 = [], rejected = [], dups = [];
  const charts = [
    chart('Events per second', [{ name: 'acknowledged', color: '#2f6fbd', values: acked }, { name: 'committed', color: '#2e9b5f', values: committed }], fmtRate),
    chart('Backlog (events not yet committed)', [{ name: 'backlog', color: '#c7772a', values: backlog }], fmtInt),
    chart('Ack → commit lag (last commits)', [{ name: 'p50', color: '#2e9b5f', values: p50 }, { name: 'p99', color: '#c23b3b', values: p99 }], fmtSecs),
    chart('Refused and duplicate records per second', [{ name: 'rejected', color: '#c23b3b', values: rejected }, { name: 'duplicates', color: '#8a63c7', values: dups }], fmtRate),
  ];
  const tiles = h('div', { class: 'tiles' });
  const status = h('div', { class: 'status' });
  const flushes = h('div', {});
  const compactions = h('div', {});
  const actions = h('div', { class: 'actions' });
  if (admin) {
    const say = h('span', { class: 'muted' });
    const act = (label, path, what) => h('button', {
      type: 'button', id: 'action-' + what, onclick: async (ev) => {
        ev.target.disabled = true;
        say.textContent = label + '…';
        try {
          const r = await api(path, { method: 'POST' });
          say.textContent = label + ': ' + summarize(r);
        } catch (e) { say.textContent = label + ' failed: ' + e.message; }
        ev.target.disabled = false;
      },
    }, label);
    actions.append(act('Flush now', '/tables/' + ref + '/flush', 'flush'));
    if (state.who.maintenance) actions.append(act('Compact now', '/tables/' + ref + '/compact', 'compact'));
    actions.append(say);
  } else {
    actions.append(h('span', { class: 'muted', id: 'read-only', text: 'Read-only: flushing and compaction on request take the admin role.' }));
  }
  body.append(
    h('p', { class: 'muted', text: 'This node\'s figures for the table, refreshed every second; rates are the change between two refreshes.' }),
    actions, tiles, status, h('div', { class: 'charts' }, charts.map((c) => c.el)),
    h('h2', { text: 'Flush history (this node)' }), flushes,
    h('h2', { text: 'Compaction history' }), compactions);
  renderCompactions(compactions, meta);
  let prev = null;
  let sinceMeta = 0;
  every(POLL_MS, async () => {
    let a;
    try {
      a = await api('/tables/' + ref + '/activity');
    } catch (e) {
      status.replaceChildren(errorBox(e));
      return;
    }
    const t = Date.parse(a.at);
    if (prev) {
      const dt = Math.max((t - prev.t) / 1000, 0.001);
      push(acked, Math.max(0, a.accepted - prev.a.accepted) / dt);
      push(committed, Math.max(0, a.committed - prev.a.committed) / dt);
      push(rejected, Math.max(0, a.rejected - prev.a.rejected) / dt);
      push(dups, Math.max(0, a.duplicates - prev.a.duplicates) / dt);
    }
    push(backlog, a.backlog);
    push(p50, a.lag_p50_seconds ?? null);
    push(p99, a.lag_p99_seconds ?? null);
    prev = { t, a };
    charts.forEach((c) => c.draw());
    tiles.replaceChildren(
      tile('Accepted', fmtInt(a.accepted), 'accepted'),
      tile('Committed through', fmtInt(a.committed), 'committed'),
      tile('Backlog', fmtInt(a.backlog), 'backlog'),
      tile('Duplicates', fmtInt(a.duplicates), 'duplicates'),
      tile('Rejected', fmtInt(a.rejected), 'rejected'),
      tile('Dead letters', fmtInt(a.dead_letters), 'dead-letters'),
      tile('Lag p50 / p99', fmtSecs(a.lag_p50_seconds) + ' / ' + fmtSecs(a.lag_p99_seconds), 'lag'),
      tile('Node', a.node || '–', 'node'));
    status.replaceChildren(a.flush_failures > 0
      ? h('div', { class: 'error', text: a.flush_failures + ' flushes failed in a row: ' + (a.flush_error || '') })
      : h('span', { class: 'muted', text: a.oldest_unflushed ? 'Oldest event waiting since ' + fmtTime(Date.parse(a.oldest_unflushed)) : 'Nothing waiting.' }));
    const rows = [...a.commits].reverse().map((c) => [fmtTime(Date.parse(c.at)), String(c.snapshot_id), fmtInt(c.rows), fmtInt(c.files), fmtBytes(c.bytes), fmtSecs(c.lag_seconds), c.shared ? 'shared' : '']);
    flushes.replaceChildren(rows.length
      ? table(['Committed', 'Snapshot', { label: 'Rows', num: true }, { label: 'Files', num: true }, { label: 'Bytes', num: true }, { label: 'Lag', num: true }, ''], rows, { id: 'flushes' })
      : h('p', { class: 'muted', text: 'No commits on this node since it started.' }));
    if (++sinceMeta >= 10) { // compactions are rarer: reload the metadata every 10 s
      sinceMeta = 0;
      const loaded = await api('/v1/namespaces/' + nsPath(levels) + '/tables/' + encodeURIComponent(name) + '?snapshots=all');
      renderCompactions(compactions, loaded.metadata);
    }
  });
}

function summarize(r) {
  if (!r || typeof r !== 'object') return 'done';
  return Object.entries(r).filter(([, v]) => typeof v !== 'object').map(([k, v]) => k + ' ' + v).join(', ');
}

function renderCompactions(el, meta) {
  const snaps = (meta.snapshots || []).filter((s) => committer(s.summary).kind === 'compaction').sort((a, b) => b['timestamp-ms'] - a['timestamp-ms']);
  el.replaceChildren(snaps.length
    ? table(['When', 'Snapshot', { label: 'Files removed', num: true }, { label: 'Files added', num: true }, { label: 'Rows', num: true }, 'Node'],
      snaps.slice(0, 50).map((s) => [fmtTime(s['timestamp-ms']), String(s['snapshot-id']), fmtInt(s.summary['deleted-data-files'] || 0), fmtInt(s.summary['added-data-files'] || 0), fmtInt(s.summary['added-records'] || 0), s.summary['zombi.compaction.node']]), { id: 'compactions' })
    : h('p', { class: 'muted', text: 'No compaction yet.' }));
}

// ---- live tail ----

// Reads the table's SSE stream with fetch (EventSource cannot send the
// Authorization header) and shows the newest events first; reconnects
// after the last event when the stream ends.
function renderTail(body, levels, name) {
  const ref = ingestRef(levels, name);
  const rows = h('tbody', {});
  const count = h('b', { id: 'tail-count', text: '0' });
  const status = h('span', { class: 'muted', id: 'tail-status', text: 'connecting…' });
  body.append(
    h('p', { class: 'muted', text: 'Events as this node acknowledges them (GET /tables/{table}/stream), newest first; the last ' + TAIL_ROWS + ' are kept.' }),
    h('div', { class: 'status' }, 'Received ', count, ' · ', status),
    h('table', { class: 'grid', id: 'tail' },
      h('thead', {}, h('tr', {}, h('th', { class: 'num', text: 'Offset' }), h('th', { text: 'Ingested' }), h('th', { class: 'num', text: 'Partition' }), h('th', { text: 'Event' }))),
      rows));
  let received = 0;
  let last = null;
  let stopped = false;
  let ctrl = null;
  state.stops.push(() => { stopped = true; if (ctrl) ctrl.abort(); });
  const onEvent = (type, id, data) => {
    if (id) last = id;
    if (type === 'gap') { status.textContent = 'gap: some events were already committed and left the hot tier'; return; }
    if (type === 'dropped') { status.textContent = 'the server ended the stream (' + (JSON.parse(data).reason || '') + '); reconnecting'; return; }
    let ev;
    try { ev = JSON.parse(data, exactIntegers); } catch (e) { return; }
    received++;
    count.textContent = fmtInt(received);
    rows.prepend(h('tr', { 'data-offset': ev.offset }, h('td', { class: 'num', text: String(ev.offset) }), h('td', { class: 'nowrap', text: shortTime(ev.ingest_time) }),
      h('td', { class: 'num', text: String(ev.partition) }), h('td', { class: 'event code', text: eventText(ev.event) })));
    while (rows.children.length > TAIL_ROWS) rows.lastChild.remove();
  };
  const connect = async () => {
    while (!stopped) {
      ctrl = new AbortController();
      const headers = { Accept: 'text/event-stream' };
      if (state.token) headers.Authorization = 'Bearer ' + state.token;
      if (last) headers['Last-Event-ID'] = last;
      try {
        const res = await fetch('/tables/' + ref + '/stream', { headers, signal: ctrl.signal });
        if (!res.ok) {
          const b = await res.json().catch(() => ({}));
          status.textContent = 'stream refused: ' + res.status + ' ' + ((b.error && b.error.message) || '');
          if (res.status === 401 && state.client) {
            try { setToken(await clientToken(state.client.id, state.client.secret)); continue; } catch (e) { return; }
          }
          if (res.status === 401 || res.status === 403 || res.status === 404) return;
        } else {
          status.textContent = 'live';
          await readSSE(res.body, onEvent);
          if (!stopped) status.textContent = 'stream ended; reconnecting';
        }
      } catch (e) {
        if (stopped) return;
        status.textContent = 'disconnected (' + e.message + '); reconnecting';
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  connect();
}

// eventText is what the tail shows of an event: an event table's payload
// (as text when it is UTF-8) with its key, a row table's row.
function eventText(e) {
  if (!e || typeof e !== 'object') return JSON.stringify(e);
  if ('payload_base64' in e) {
    const key = e.idempotency_key ? ' [key ' + e.idempotency_key + ']' : '';
    return (e.payload !== undefined && e.payload !== null ? e.payload : 'base64:' + e.payload_base64) + key;
  }
  return JSON.stringify(e);
}

function shortTime(t) { return typeof t === 'string' ? t.replace('T', ' ').replace(/(\.\d{3})\d*Z$/, '$1Z') : String(t); }

async function readSSE(stream, onEvent) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let type = '', id = '', data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length) onEvent(type || 'message', id, data.join('\n'));
        type = ''; data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'data') data.push(val);
      else if (field === 'event') type = val;
      else if (field === 'id') id = val;
    }
  }
}

// ---- views and nodes ----

async function pageView(levels, name) {
  const loaded = await api('/v1/namespaces/' + nsPath(levels) + '/views/' + encodeURIComponent(name));
  const meta = loaded.metadata;
  const version = (meta.versions || []).find((v) => v['version-id'] === meta['current-version-id']) || {};
  const schema = (meta.schemas || []).find((s) => s['schema-id'] === version['schema-id']) || { fields: [] };
  show(
    h('div', { class: 'crumbs' }, h('a', { href: '#/', text: 'Catalog' }), ' / ', h('a', { href: nsHash(levels), text: nsName(levels) }), ' / ', name),
    h('h1', { text: 'View ' + nsName(levels) + '.' + name }),
    h('p', { class: 'muted', text: 'Version ' + version['version-id'] + ' of ' + (meta.versions || []).length + (version['timestamp-ms'] ? ', ' + fmtTime(version['timestamp-ms']) : '') }),
    h('h2', { text: 'Schema' }),
    table(['ID', 'Column', 'Type', 'Required', 'Doc'], schemaRows(schema.fields, 0, []), { id: 'view-schema' }),
    h('h2', { text: 'SQL' }),
    (version.representations || []).flatMap((r) => [h('div', { class: 'muted', text: r.dialect }), h('pre', { class: 'sql', text: r.sql })]),
    h('h2', { text: 'Properties' }),
    table(['Key', 'Value'], Object.entries(meta.properties || {}).sort()),
  );
}

async function pageNodes() {
  show(h('h1', { text: 'Nodes' }), h('div', { id: 'nodes-body' }, h('p', { class: 'muted', text: 'Loading…' })));
  every(5000, async () => {
    const el = document.getElementById('nodes-body');
    if (!el) return;
    let list;
    try {
      list = await api('/v1/zombi/nodes');
    } catch (e) {
      el.replaceChildren(e.status === 404
        ? h('p', { class: 'muted', id: 'single-node', text: 'One node: this server runs on the embedded store, which has no node registry. Run several nodes on Postgres to see them here.' })
        : e.status === 403 ? h('p', { class: 'muted', text: 'The node list takes the admin role on every namespace.' }) : errorBox(e));
      return;
    }
    el.replaceChildren(
      h('p', { class: 'muted', text: list.nodes.length + ' nodes registered on the database; refreshed every 5 s.' }),
      table(['Node', 'State', { label: 'Stream', num: true }, 'URL', 'Started', { label: 'Heartbeat age', num: true }, { label: 'Backlog', num: true }, 'Oldest unflushed', 'Last commit'],
        list.nodes.map((n) => [n.node_id, n.state, String(n.stream), n.url || '', fmtTime(Date.parse(n.started_at)), fmtSecs(n.heartbeat_age_seconds), fmtBytes(n.backlog_bytes),
          n.oldest_unflushed ? fmtTime(Date.parse(n.oldest_unflushed)) : '–', n.last_commit ? fmtTime(Date.parse(n.last_commit)) : '–']), { id: 'nodes' }));
  });
}

// ---- start ----

function highlight() {
  const [page, a] = parseHash();
  for (const el of document.querySelectorAll('#ns-tree a')) {
    el.classList.toggle('current', (page === 'ns' || page === 't' || page === 'v') && a && el.dataset.ns === a.split(US).join('.'));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('login-form').addEventListener('submit', (ev) => { signIn(ev).catch((e) => { document.getElementById('login-error').textContent = e.message; }); });
  document.getElementById('logout').addEventListener('click', signOut);
  window.addEventListener('hashchange', () => { route().then(highlight); });
  route().then(highlight);
});
