"""The reps' workspace: server-rendered pages under ``/app`` (sign in with a `rep` key, the
queue of waiting leads, the lead card with its verdict form), served by the scoring API's app
(:func:`leadscore.serving.app.routes.mount_pages`).
"""
