"""Other engines that drive the scan's stages (:mod:`genretag.scan`) over many machines.

:mod:`genretag.engines.ray_scan`: the scan on Ray Data (``pip install 'genretag[ray]'``,
``genretag scan --engine ray``). Importing this package imports nothing heavy; Ray is
imported only when an engine runs.
"""
