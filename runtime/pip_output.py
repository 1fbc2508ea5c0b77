"""pip's output, line by line, turned into a short status, a rough fraction done and, when pip
fails, one message that says what to do."""
from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlparse

from .builds import ENV_PIP_ARGS, mb_text
from .paths import ENV_DIR

# What the CPU build must never pull in: a sign that pip fell back to PyPI's CUDA torch.
_CUDA_PACKAGE = re.compile(r"^(nvidia[-_]|cuda[-_](toolkit|bindings|runtime)|triton\b)", re.I)
_SIZE = re.compile(r"\(([\d.,]+)\s*(bytes|kB|MB|GB|KB)\)\s*$")
_UNITS = {"bytes": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
_NO_NETWORK = ("NewConnectionError", "Failed to establish a new connection", "Name or service not known",
               "Temporary failure in name resolution", "getaddrinfo failed", "Network is unreachable",
               "nodename nor servname", "No address associated with hostname", "ConnectTimeoutError",
               "ProxyError", "Max retries exceeded", "Read timed out", "Connection refused")
_DISK_FULL = ("No space left on device", "[Errno 28]", "not enough space on the disk")
# pip's hint when Windows refused a path over 260 characters (PyTorch has deep ones).
_LONG_PATHS = ("Windows Long Path support",)


def dist_name(ref: str) -> str:
    """``torch`` from ``torch-2.5.1+cpu-cp311-...whl``, a URL to it, or a path."""
    base = unquote(os.path.basename(urlparse(ref).path if "://" in ref else ref))
    return base.split("-")[0] or base


class PipOutput:
    """Follows pip's output line by line: a short status and a rough fraction."""

    def __init__(self, expected_mb: float = 0.0):
        self.expected = expected_mb * 1e6
        self.text = "Starting pip..."
        self.fraction = 0.0
        self.downloads: dict[str, float] = {}     # file -> bytes (deduplicated: pip may list one twice)
        self.current: str | None = None
        self.current_name = ""
        self.current_done = 0.0
        self.collected: list[str] = []
        self.installed: list[str] = []
        self.errors: list[str] = []
        self.lines: list[str] = []
        self.no_network = False
        self.host: str | None = None
        self.disk_full = False
        self.long_paths = False

    def _download_fraction(self) -> float:
        done = sum(v for k, v in self.downloads.items() if k != self.current)
        seen = sum(self.downloads.values())
        total = max(self.expected, seen, 1.0)
        return 0.05 + 0.8 * min(1.0, (done + self.current_done) / total)

    def feed(self, line: str):
        line = line.rstrip()
        if not line:
            return
        self.lines = (self.lines + [line])[-200:]
        s = line.strip()
        if any(k in s for k in _NO_NETWORK):
            self.no_network = True
            host = re.search(r"host='([^']+)'", s)
            self.host = host.group(1) if host else self.host
        if any(k in s for k in _DISK_FULL):
            self.disk_full = True
        if any(k in s for k in _LONG_PATHS):
            self.long_paths = True
        if s.startswith("ERROR:"):
            self.errors.append(s[6:].strip())
            return
        m = re.match(r"Progress (\d+) of (\d+)$", s)
        if m and self.current is not None:
            self.current_done = float(m.group(1))
            total = float(m.group(2)) or self.downloads.get(self.current, 0.0)
            self.text = f"Downloading {self.current_name}: {self.current_done / 1e6:.0f} of {total / 1e6:.0f} MB"
            self.fraction = max(self.fraction, self._download_fraction())
            return
        m = re.match(r"(Downloading|Using cached|Processing)\s+(\S+)", s)
        if m:
            kind, ref = m.groups()
            size = _SIZE.search(s)
            nbytes = float(size.group(1).replace(",", "")) * _UNITS[size.group(2)] if size else 0.0
            self.current, self.current_name, self.current_done = ref, dist_name(ref), 0.0
            self.downloads[ref] = nbytes
            if kind == "Downloading":
                self.text = f"Downloading {self.current_name}" + (f" ({mb_text(nbytes / 1e6)})" if nbytes else "")
            else:
                self.current_done = nbytes        # nothing to wait for
                self.text = f"Reading {self.current_name}"
            self.fraction = max(self.fraction, self._download_fraction())
            return
        m = re.match(r"Collecting\s+(\S+)", s)
        if m:
            name = re.split(r"[<>=!~;\[ ]", m.group(1))[0]
            self.collected.append(name)
            self.text = f"Resolving {name}..."
            self.fraction = max(self.fraction, 0.02)
            return
        m = re.match(r"Installing collected packages:\s*(.*)$", s)
        if m:
            n = len([p for p in m.group(1).split(",") if p.strip()])
            self.text = f"Installing {n} package{'s' if n != 1 else ''}..."
            self.fraction = 0.88
            return
        m = re.match(r"Successfully installed\s+(.*)$", s)
        if m:
            self.installed = m.group(1).split()
            self.text, self.fraction = "Finishing...", 0.97

    def cuda_in_cpu_build(self, torch_named_cpu: bool = False) -> str | None:
        """What shows that pip is fetching a CUDA PyTorch: a CUDA library, or (where the CPU
        index names its wheels ``+cpu``: Linux) a torch wheel without that tag; else None."""
        if torch_named_cpu:
            for ref in self.downloads:
                wheel = unquote(os.path.basename(urlparse(ref).path if "://" in ref else ref))
                if dist_name(ref).lower() == "torch" and "+cpu" not in wheel:
                    return wheel
        return next((n for n in self.collected if _CUDA_PACKAGE.match(n)), None)

    def error(self, where: str) -> str:
        """One message for a failed pip run."""
        if self.disk_full:
            return f"the disk is full (while installing into {where}); free some space and try again"
        if self.long_paths:
            return (f"Windows refused a file path longer than 260 characters (in {where}): turn on long paths "
                    f"(https://pip.pypa.io/warnings/enable-long-paths) or set {ENV_DIR} to a short folder "
                    "such as C:\\photo3d, then try again")
        if self.no_network:
            where = f" ({self.host})" if self.host else ""
            return (f"cannot reach the package index{where}: check the internet connection or proxy (or set "
                    f"{ENV_PIP_ARGS} to a local wheel mirror, e.g. --no-index --find-links DIR)")
        useful = [e for e in self.errors if not e.startswith("ResolutionImpossible")]
        msg = useful[-1] if useful else (self.errors[-1] if self.errors else
                                         (self.lines[-1].strip() if self.lines else "pip failed"))
        text = "\n".join(self.lines)
        if "conflicting dependencies" in text and "numpy" in text.lower():
            msg += " (Blender's NumPy is kept: a package wants another NumPy)"
        return "pip: " + msg
