from connectors.maildir.connector import MaildirConfig, MaildirConnector

__all__ = ["MaildirConfig", "MaildirConnector"]
