"""Playing worlds in a browser: an http.server page with a WebSocket per player.

Lives in the library (not experiments/) because it is what `wm play` runs and what a notebook
or another program embeds: `serve(WorldRegistry({...}))`. Standard library plus wm_jax only.

  websocket.py  RFC 6455 framing over a socket (stdlib)
  session.py    one player: its rollout state, the paced frame loop, the message protocol
  server.py     HTTP routes, limits, the world registry
  page/         index.html, play.js, play.css
"""
