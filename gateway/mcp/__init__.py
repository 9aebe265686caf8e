"""The MCP gateway (SPEC 17): upstream MCP servers merged behind one authenticated /mcp.
Everything here loads the `mcp` SDK; the web layer imports it only when mcp_servers is set."""
