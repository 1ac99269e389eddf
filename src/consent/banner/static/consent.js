/* asgi-consent: progressive enhancement of the consent banner (works without it). */
(() => {
  'use strict';
  const d = document, me = d.currentScript, nonce = me && me.nonce,
    R = (me && me.closest('[data-consent-root]')) || d.querySelector('[data-consent-root]');
  if (!R) return;
  const $$ = (s, e) => [...(e || d).querySelectorAll(s)],
    modes = JSON.parse(R.dataset.consentModes || 'null'),
    M = R.querySelector('.cc-manage'),
    ok = e => e.dataset.consent.split(/\s+/).every(k => G.has(k)),
    gtag = window.gtag || function () { (window.dataLayer = window.dataLayer || []).push(arguments); };
  let G = new Set(R.dataset.consentGranted.split(' ')),
    B = R.querySelector('[data-consent-banner]'), back = null, busy = 0;

  // Run gated <script type="text/plain" data-consent="k"> and load gated iframes.
  const activate = () => {
    $$('script[type="text/plain"][data-consent]').filter(ok).forEach(s => {
      const n = d.createElement('script');
      for (const a of s.attributes) if (!/^(type|data-consent|data-type|nonce)$/.test(a.name)) n.setAttribute(a.name, a.value);
      if (s.dataset.type) n.type = s.dataset.type;
      if (nonce) n.nonce = nonce;
      n.async = s.hasAttribute('async'); // keep document order, like the parser would
      n.text = s.text;
      s.replaceWith(n);
    });
    $$('iframe[data-consent][data-src]').filter(ok).forEach(f => {
      f.src = f.dataset.src;
      f.removeAttribute('data-src');
    });
  };

  const shown = () => B && !B.hidden,
    // A bar must never hide the element that has focus (WCAG 2.4.11).
    pad = () => {
      const s = d.documentElement.style, top = B && B.matches('.cc-top');
      s.scrollPaddingTop = s.scrollPaddingBottom = '';
      if (shown() && B.matches('.cc-bar')) s[top ? 'scrollPaddingTop' : 'scrollPaddingBottom'] = B.offsetHeight + 'px';
    },
    focusables = () => $$('a[href],button,input:not([disabled]),summary', B)
      .filter(e => (e.checkVisibility ? e.checkVisibility() : e.getClientRects().length)), // closed <details> content is laid out
    open = (trigger, settings) => {
      back = trigger;
      B.hidden = false;
      if (M) M.hidden = true;
      if (navigator.globalPrivacyControl) $$('[data-consent-gpc]', B).forEach(p => { p.hidden = false; });
      if (settings) B.querySelector('details').open = true;
      pad();
      B.querySelector('button').focus({ preventScroll: !trigger });
    },
    close = () => {
      B.hidden = true;
      if (M) M.hidden = false;
      pad();
      if (back && back.isConnected) back.focus();
      back = null;
    };

  const apply = st => {
    const was = G, w = B.querySelector('[value=withdraw]');
    G = new Set(st.granted);
    R.dataset.consentGranted = st.granted.join(' ');
    $$('input[name=categories]:not(:disabled)', B).forEach(i => { i.checked = G.has(i.value); });
    if (w) w.hidden = !st.decided;
    B.querySelector('[name=source]').value = 'settings';
    if (modes) {
      const u = {};
      for (const k in modes) for (const t of modes[k]) u[t] = u[t] === 'granted' || G.has(k) ? 'granted' : 'denied';
      gtag('consent', 'update', u);
    }
    d.dispatchEvent(new CustomEvent('consent:change', { detail: st }));
    close();
    // Scripts that already run cannot be stopped: reload when consent was taken back.
    if ([...was].some(k => !G.has(k))) location.reload();
    else activate();
  };

  d.addEventListener('submit', e => {
    const f = e.target, s = e.submitter;
    if (!B || !B.contains(f) || !s || s.name !== 'action' || !window.fetch) return;
    e.preventDefault();
    const a = s.value, body = {
      action: a,
      categories: a === 'save' ? $$('input[name=categories]:checked:not(:disabled)', f).map(i => i.value) : [],
      source: f.elements.source.value
    };
    fetch(f.getAttribute('action'), { // not f.action: the buttons named "action" shadow it
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body)
    }).then(r => (r.ok ? r.json() : Promise.reject(r))).then(apply, () => {
      // The no-JavaScript path: a plain form post that comes back with a 303.
      const h = d.createElement('input');
      h.type = 'hidden'; h.name = 'action'; h.value = a;
      f.append(h);
      f.submit();
    });
  });

  d.addEventListener('click', e => {
    const o = e.target.closest && e.target.closest('[data-consent-open]'), P = R.dataset.consentPrefix;
    if (!o || !(B || window.fetch)) return;
    e.preventDefault();
    if (B) return open(o, true);
    // A decided visitor's page has no banner: fetch it, or else follow the link (the no-JS path).
    if (busy++) return;
    fetch(P + '/banner?next=' + encodeURIComponent(location.pathname + location.search)) // fetch sends cookies to its own origin
      .then(r => (r.ok ? r.text() : Promise.reject())).then(h => {
        R.insertAdjacentHTML('beforeend', h);
        B = R.querySelector('[data-consent-banner]');
        open(o, true);
      }).catch(() => { location.href = o.href || P + '/policy'; });
  });

  d.addEventListener('keydown', e => {
    if (!shown() || !B.contains(e.target)) return;
    if (e.key === 'Escape') {
      // Never a consent: closes the settings, then the banner (the visitor stays undecided).
      const det = B.querySelector('details[open]');
      e.preventDefault();
      if (det) { det.open = false; det.querySelector('summary').focus(); } else close();
    } else if (e.key === 'Tab' && B.getAttribute('aria-modal')) {
      const f = focusables(), first = f[0], last = f[f.length - 1];
      if (e.shiftKey ? e.target === first : e.target === last) {
        e.preventDefault();
        (e.shiftKey ? last : first).focus();
      }
    }
  });
  d.addEventListener('toggle', pad, true);

  activate();
  if (shown()) open(null, false);
})();
