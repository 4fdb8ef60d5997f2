"""WhatsApp connector: `normalize` turns a Cloud API webhook body into Inbounds and receipts."""

from connectors.whatsapp.normalize import normalize

__all__ = ["normalize"]
