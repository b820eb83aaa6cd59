"""AWS tooling: provisioning, flow verification, the local emulator and a reference consumer."""
