"""The process: the command line, the supervisor that forks and watches workers, each worker's
server and its uvloop. Everything below is reached through gateway.web.app.create_app."""
