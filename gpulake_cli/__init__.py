"""gpulake's command line and the offline tools behind it (demo, report, simulator, uploader, collector).

Installed with ``pip install 'gpulake[cli]'``; the Lambda package never contains it.
"""
