with subtest("users in wheel group should have passwordless sudo"):
    machine.succeed('su - test0 -c "sudo -u root true"')

with subtest("test1 user should have sudo with password"):
    machine.succeed('su - test1 -c "echo helloworld | sudo -S -u root true"')

with subtest("test1 user should not be able to use sudo without password"):
    machine.fail('su - test1 -c "sudo -n -u root true"')

with subtest("users in group 'foobar' should be able to use sudo with password"):
    machine.succeed('su - test2 -c "echo helloworld | sudo -S -u root true"')

with subtest("users in group 'barfoo' should be able to use sudo without password"):
    machine.succeed("sudo -u test3 sudo -n -u root true")

with subtest("users in group 'baz' (GID 1337)"):
    machine.succeed("sudo -u test4 sudo -n -u root echo true")

with subtest("test5 user should be able to run commands under test1"):
    machine.succeed("sudo -u test5 sudo -n -u test1 true")

with subtest("test5 user should not be able to run commands under root"):
    machine.fail("sudo -u test5 sudo -n -u root true")

with subtest("test5 user should be able to keep their environment"):
    machine.succeed("sudo -u test5 sudo -n -E -u test1 true")

with subtest("users in group 'barfoo' should not be able to keep their environment"):
    machine.fail("sudo -u test3 sudo -n -E -u root true")

with subtest("users in wheel should be able to run sudo despite execWheelOnly"):
    strict.succeed('su - admin -c "sudo -u root true"')

with subtest("non-wheel users should be unable to run sudo thanks to execWheelOnly"):
    strict.fail('su - noadmin -c "sudo --help"')
