"""ddescan: a pre-execution static scanner for DDE payloads (MITRE ATT&CK T1559.002)."""

from scanner.api import scan_bytes, scan_path
from scanner.config import load_config
from scanner.model import (
    DdeCall,
    Evidence,
    Finding,
    KqlAssessment,
    Location,
    ProcessPrediction,
    ScanConfig,
    ScanLimits,
    ScanReport,
    Severity,
    Technique,
    Verdict,
)

__version__ = "0.1.0"

__all__ = [
    "DdeCall",
    "Evidence",
    "Finding",
    "KqlAssessment",
    "Location",
    "ProcessPrediction",
    "ScanConfig",
    "ScanLimits",
    "ScanReport",
    "Severity",
    "Technique",
    "Verdict",
    "__version__",
    "load_config",
    "scan_bytes",
    "scan_path",
]
