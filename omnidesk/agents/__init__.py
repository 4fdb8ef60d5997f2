"""Agents: who works which queues (roster), claims and push assignment, presence, the
actions on a ticket (desk), tokens, CSAT, the /v1 API and the console.

`omnidesk.agents.plugin.AgentsPlugin` wires it all into the daemon (omnidesk.plugins).
"""
