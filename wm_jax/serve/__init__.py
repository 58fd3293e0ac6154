"""Playing worlds in a browser: a page and a WebSocket per player, served by `websockets`.

Lives in the library (not the CLI) because it is what `wm play` runs and what a notebook
or another program embeds: `serve(WorldRegistry({...}))`. The `websockets` package (its threaded
server) speaks HTTP and the WebSocket protocol; these files hold only what is ours.

  session.py    one player: its rollout state, the paced frame loop, the message protocol
  server.py     HTTP routes, limits, the world registry
  page/         index.html, play.js, play.css
"""
