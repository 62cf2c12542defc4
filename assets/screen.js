/* Wall-screen behaviour that must not cost a server round trip: rotation, clock, periodic reload, and hiding
   the mouse cursor after a few idle seconds. Only active on pages with a .screen-root. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  screen: {
    rotate: function (n, state, ids) {
      var count = (ids || []).length;
      if (!count) { return [window.dash_clientside.no_update, []]; }
      var index = (((state && state.index) || 0) + 1) % count;
      var dots = document.querySelectorAll('.screen-root .sh-dot');
      dots.forEach(function (d, i) { d.classList.toggle('active', i === index); });
      return [{index: index, rotated: n},
              ids.map(function (_, i) { return i === index ? 'screen-view active' : 'screen-view'; })];
    },
    clock: function () {
      var d = new Date();
      var pad = function (v) { return (v < 10 ? '0' : '') + v; };
      return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
             pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    },
    scale: function () {
      document.body.classList.add('screen-mode');
      return Math.max(0.5, Math.min(4, window.innerWidth / 1920));
    },
    // The periodic full reload first asks the server for the page: a reload while the server is unreachable would
    // leave the browser's error page, with nothing left to retry. Only a 2xx answer reloads; anything else (no
    // answer, a 502 from a proxy, a 503) keeps the running screen and asks again after retryMs.
    retryMs: 60000,
    reload: function (n) {
      if (n) { window.dash_clientside.screen.reloadWhenReachable(); }
      return false;
    },
    reloadWhenReachable: function () {
      var self = window.dash_clientside.screen;
      if (self.pending) { return; }          // one attempt (or its retry) at a time
      self.pending = true;
      var retry = function () { setTimeout(function () { self.pending = false; self.reloadWhenReachable(); },
                                           self.retryMs); };
      var attempt;
      try {
        attempt = window.fetch(window.location.href, {cache: 'no-store', credentials: 'same-origin'});
      } catch (e) {
        retry();
        return;
      }
      attempt.then(function (r) {
        if (r && r.ok) { window.location.reload(); } else { retry(); }
      }, retry);
    }
  }
});

(function () {
  var timer = null;
  function idle() { document.body.classList.add('screen-idle'); }
  function wake() {
    var screen = !!document.querySelector('.screen-root');
    document.body.classList.toggle('screen-mode', screen);
    document.body.classList.remove('screen-idle');
    if (timer) { clearTimeout(timer); }
    if (screen) { timer = setTimeout(idle, 3000); }
  }
  ['mousemove', 'mousedown', 'keydown', 'touchstart'].forEach(function (e) {
    document.addEventListener(e, wake, {passive: true});
  });
  wake();
})();
