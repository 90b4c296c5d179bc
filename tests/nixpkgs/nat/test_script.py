client.start()
router.start()
server.start()

# The router should have access to the server.
server.wait_for_unit("network.target")
server.wait_for_unit("httpd")
router.wait_for_unit("network.target")
router.succeed("curl -4 --fail http://server/ >&2")

# The client should be also able to connect via the NAT router.
router.wait_for_unit("nat")
client.wait_for_unit("network.target")
client.succeed("curl --fail http://server/ >&2")
client.succeed("ping -4 -c 1 server >&2")

# Test whether passive FTP works.
server.wait_for_unit("vsftpd")
server.succeed("echo Hello World > /home/ftp/foo.txt")
client.succeed("curl -v ftp://server/foo.txt >&2")

# Test whether active FTP works.
client.fail("curl -v -P - ftp://server/foo.txt >&2")

# Test ICMP.
client.succeed("ping -4 -c 1 router >&2")
router.succeed("ping -4 -c 1 client >&2")
