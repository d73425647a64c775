"""costmodel: should the write-protect fault drain per-CPU LRU batches, or just copy the page?"""

__version__ = "0.1.0"
