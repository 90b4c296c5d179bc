start_all()

peer0.wait_for_unit("wireguard-wg0.service")
peer1.wait_for_unit("wireguard-wg0.service")

peer1.succeed("ping -c5 fc00::1")
peer1.succeed("ping -c5 10.23.42.1")
