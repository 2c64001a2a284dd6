"""E-mail notifications of alarm events over SMTP, SMTPS or STARTTLS, through an on-disk spool
so that a message survives a server that is away and a restart."""
