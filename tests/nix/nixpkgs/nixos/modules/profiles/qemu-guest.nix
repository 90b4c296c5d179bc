# Stub of nixpkgs' profiles/qemu-guest.nix: the virtio modules it adds to the initrd.
{ ... }: { boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" "virtio_scsi" "virtio_net" ]; }
