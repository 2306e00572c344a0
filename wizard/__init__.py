"""studio-cluster: installer and operator console for a highly available Crafter Studio cluster."""

__version__ = "0.1.0"
