start_all()

local_router.wait_for_unit("babeld.service")
remote_router.wait_for_unit("babeld.service")

local_router.wait_until_succeeds("ip route get 192.168.30.1")
local_router.wait_until_succeeds("ip route get 2001:db8:30::1")

remote_router.wait_until_succeeds("ip route get 192.168.10.1")
remote_router.wait_until_succeeds("ip route get 2001:db8:10::1")

client.succeed("ping -c1 192.168.30.1")
client.succeed("ping -c1 2001:db8:30::1")

remote_router.succeed("ping -c1 192.168.10.2")
remote_router.succeed("ping -c1 2001:db8:10::2")
