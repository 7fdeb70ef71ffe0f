"""What the benchmarks share with the browser journeys (tests/flows import it; benchmarks never import tests/).

``portal.PortalServer`` prepares a throw-away database with the real catalog and a quickly trained serving
bundle and runs APEX under uvicorn on it; ``server_settings`` are that server's settings; ``browser`` names
Debian's Chromium and the viewport sizes the journeys and the screenshots use.
"""
