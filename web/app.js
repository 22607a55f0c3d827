// The imgsync gallery. Plain DOM, no library. Every name and attribute is
// put on the page as text (textContent, never innerHTML), and every
// request that changes something carries the session's CSRF token.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { csrf: '', prefix: '', dir: '', q: '', type: '', cursor: null,
  loading: false, gen: 0, current: null, maxUpload: 0 };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET') opt.headers['X-CSRF-Token'] = state.csrf;
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  const r = await fetch(path, opt);
  if (r.status === 401) { location.reload(); throw new Error('logged out'); }
  let doc = null;
  try { doc = await r.json(); } catch (e) { doc = null; }
  if (!r.ok) throw new Error((doc && doc.message) || (r.status + ' ' + r.statusText));
  return doc;
}

function size(n) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}

// "90s", "15m", "1h", "7d" or plain seconds.
function seconds(s) {
  const m = /^\s*(\d+)\s*([smhd]?)\s*$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 })[m[2]];
}

// ---- folders, breadcrumbs ------------------------------------------------

function go(dir) {
  state.dir = dir;
  const h = '#' + encodeURIComponent(dir);
  if (location.hash !== h) history.pushState(null, '', h || '#');
  reload();
}

function crumbs() {
  const nav = $('crumbs');
  nav.replaceChildren();
  const root = el('a', '', state.prefix ? state.prefix : 'root');
  root.addEventListener('click', () => go(''));
  nav.append(root);
  let acc = '';
  for (const part of state.dir.split('/').filter(Boolean)) {
    acc += part + '/';
    const d = acc;
    nav.append(el('span', 'sep', '/'));
    const a = el('a', '', part);
    a.addEventListener('click', () => go(d));
    nav.append(a);
  }
}

// ---- the grid -----------------------------------------------------------

function card(img) {
  const li = el('li');
  li.tabIndex = 0;
  li.dataset.name = img.FileName;
  const t = el('div', 'thumb');
  if (img.thumb_url) {
    const i = el('img');
    i.loading = 'lazy';
    i.alt = img.name;
    i.src = img.thumb_url;
    t.append(i);
  } else {
    t.append(el('span', 'kind', img.thumb_error ? 'no preview' : (img.Type || '')));
  }
  li.append(t, el('div', 'caption', img.name));
  const meta = [img.Width && img.Height ? img.Width + '×' + img.Height : '', size(img.Size || 0)];
  li.append(el('div', 'meta', meta.filter(Boolean).join(' · ')));
  li.title = img.name;
  const open = () => detail(img);
  li.addEventListener('click', open);
  li.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open(); });
  return li;
}

// The next page of the current view; the first when there is no cursor.
// A reload starts a new generation: an answer for an older one is dropped.
async function page() {
  if (state.loading) return;
  const gen = state.gen;
  state.loading = true;
  $('grid').dataset.loading = '1';
  const p = new URLSearchParams({ dir: state.dir });
  if (state.q) p.set('q', state.q);
  if (state.type) p.set('type', state.type);
  if (state.cursor) p.set('cursor', state.cursor);
  const first = !state.cursor;
  try {
    const doc = await api('GET', 'api/list?' + p);
    if (gen !== state.gen) return;
    if (first) {
      const f = $('folders');
      f.replaceChildren();
      for (const name of doc.folders) {
        const li = el('li');
        const b = el('button', '', name);
        b.type = 'button';
        b.addEventListener('click', () => go(state.dir + name + '/'));
        li.append(b);
        f.append(li);
      }
    }
    const grid = $('grid');
    for (const img of doc.images) grid.append(card(img));
    state.cursor = doc.cursor;
    $('more').hidden = !doc.cursor;
    $('empty').hidden = grid.children.length > 0 || doc.folders.length > 0;
  } finally {
    if (gen === state.gen) {
      state.loading = false;
      delete $('grid').dataset.loading;
    }
  }
}

// The page after the last one shown, if there is one.
function more() {
  if (state.cursor) page().catch(showError);
}

function reload() {
  state.gen++;
  state.loading = false;
  state.cursor = null;
  $('more').hidden = true;
  $('grid').replaceChildren();
  crumbs();
  page().catch(showError);
}

function showError(e) {
  $('st-state').textContent = 'error: ' + e.message;
  $('st-state').className = 'bad';
}

// ---- the detail view -----------------------------------------------------

function row(tbody, k, v) {
  const tr = el('tr');
  tr.append(el('th', '', k), el('td', '', typeof v === 'object' ? JSON.stringify(v) : String(v)));
  tbody.append(tr);
}

async function detail(img) {
  state.current = img;
  $('d-name').textContent = img.FileName;
  $('d-img').removeAttribute('src');
  $('d-img').alt = img.name;
  $('d-link').value = '';
  $('d-link-note').textContent = '';
  $('d-error').textContent = '';
  $('d-confirm').hidden = true;
  const tbody = $('d-attrs').tBodies[0];
  tbody.replaceChildren();
  $('detail').showModal();
  try {
    const [item, link] = await Promise.all([
      api('POST', 'api/getitem', { FileName: img.FileName }),
      api('POST', 'api/url', { FileName: img.FileName, ExpiresIn: 3600 }),
    ]);
    if (state.current !== img) return;
    $('d-img').src = link.url;
    const attrs = item.data || {};
    for (const k of Object.keys(attrs).sort()) row(tbody, k, attrs[k]);
  } catch (e) {
    $('d-error').textContent = e.message;
  }
}

async function share() {
  const secs = seconds($('d-expires').value);
  if (!secs) { $('d-link-note').textContent = 'Write a duration: 90s, 15m, 1h, 7d.'; return; }
  try {
    const r = await api('POST', 'api/url', { FileName: state.current.FileName, ExpiresIn: secs });
    $('d-link').value = r.url;
    $('d-link').select();
    $('d-link-note').textContent = 'Valid until ' + r.expires_at + (r.note ? ' (' + r.note + ')' : '');
    try { await navigator.clipboard.writeText(r.url); $('d-link-note').textContent += '; copied.'; } catch (e) { /* select() left it ready to copy */ }
  } catch (e) {
    $('d-link-note').textContent = e.message;
  }
}

async function remove() {
  const img = state.current;
  try {
    await api('DELETE', 'api/delete', { FileName: img.FileName });
    $('detail').close();
    for (const li of $('grid').children)
      if (li.dataset.name === img.FileName) li.remove();
  } catch (e) {
    $('d-error').textContent = e.message;
  }
}

// ---- uploads -------------------------------------------------------------

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

function upload(file) {
  const li = el('li');
  const bar = el('progress');
  bar.max = 1;
  bar.value = 0;
  const text = el('span', '', 'uploading');
  li.append(el('span', '', file.name), bar, text);
  $('uploads').append(li);
  if (state.maxUpload && file.size > state.maxUpload) {
    text.textContent = 'too large (the limit is ' + size(state.maxUpload) + ')';
    text.className = 'error';
    return;
  }
  const x = new XMLHttpRequest();
  x.open('PUT', 'api/upload?' + new URLSearchParams({ name: state.dir + file.name }));
  x.setRequestHeader('X-CSRF-Token', state.csrf);
  x.upload.addEventListener('progress', (ev) => {
    if (ev.lengthComputable) { bar.value = ev.loaded / ev.total; text.textContent = Math.round(100 * ev.loaded / ev.total) + '%'; }
  });
  x.addEventListener('error', () => { text.textContent = 'the connection failed'; text.className = 'error'; });
  x.addEventListener('load', async () => {
    let doc = null;
    try { doc = JSON.parse(x.responseText); } catch (e) { doc = null; }
    if (x.status !== 201) {
      text.textContent = (doc && doc.message) || ('failed: ' + x.status);
      text.className = 'error';
      return;
    }
    bar.removeAttribute('value');
    text.textContent = 'syncing…';
    for (let i = 0; i < 600; i++) {
      try {
        await api('POST', 'api/getitem', { FileName: doc.FileName });
        bar.value = 1;
        text.textContent = 'synced';
        reload();
        return;
      } catch (e) { await sleep(1000); }
    }
    text.textContent = 'not synced yet: see the status bar';
  });
  x.send(file);
}

function uploadAll(files) { for (const f of files) upload(f); }

// ---- the status bar ------------------------------------------------------

function setText(id, s, bad) {
  $(id).textContent = s;
  $(id).className = bad ? 'bad' : '';
}

async function status() {
  try {
    const s = await api('GET', 'api/status');
    setText('st-state', s.state, s.state !== 'running' && s.state !== 'scanning');
    setText('st-queued', 'queued ' + s.queued);
    setText('st-flight', 'in flight ' + s.in_flight);
    setText('st-failed', 'failed ' + s.failed, s.failed > 0);
    setText('st-held', 'held deletions ' + (s.held_deletions || 0), s.held_deletions > 0);
    setText('st-root', s.root_lost ? 'root: ' + s.root_lost : 'root: ok', !!s.root_lost);
    setText('st-thumbs', s.thumbnails !== undefined ? 'thumbnails ' + s.thumbnails : '');
  } catch (e) {
    setText('st-state', 'imgsyncd is not answering', true);
  }
}

// ---- start -----------------------------------------------------------------

async function main() {
  const s = await api('GET', 'api/session');
  state.csrf = s.csrf;
  state.prefix = s.prefix;
  state.maxUpload = s.max_upload_bytes;
  $('bucket').textContent = s.bucket + (s.prefix ? '/' + s.prefix : '');
  state.dir = decodeURIComponent(location.hash.slice(1));
  window.addEventListener('popstate', () => { state.dir = decodeURIComponent(location.hash.slice(1)); reload(); });
  $('search').addEventListener('submit', (ev) => ev.preventDefault());
  let timer = null;
  $('q').addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.q = $('q').value.trim(); reload(); }, 250);
  });
  $('type').addEventListener('change', () => { state.type = $('type').value; reload(); });
  $('more').addEventListener('click', more);
  new IntersectionObserver((es) => {
    if (es.some((e) => e.isIntersecting)) more();
  }).observe($('sentinel'));
  $('file').addEventListener('change', () => { uploadAll($('file').files); $('file').value = ''; });
  const drop = $('drop');
  drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('dragging'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (ev) => { ev.preventDefault(); drop.classList.remove('dragging'); uploadAll(ev.dataTransfer.files); });
  $('d-close').addEventListener('click', () => $('detail').close());
  $('d-share').addEventListener('click', share);
  $('d-delete').addEventListener('click', () => { $('d-confirm').hidden = false; });
  $('d-delete-no').addEventListener('click', () => { $('d-confirm').hidden = true; });
  $('d-delete-yes').addEventListener('click', remove);
  $('logout').addEventListener('click', async () => { await api('POST', 'logout'); location.reload(); });
  reload();
  status();
  setInterval(status, 2000);
}

main().catch(showError);
