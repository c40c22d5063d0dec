"""Drives bioxen's XAPI simulator with xapi's official Python client (XenAPI.py, as
Debian's python3-os-xenapi ships it), over XML-RPC, as a real script against a real
pool would. Prints one line per checked fact; exits non-zero on the first failure."""
import sys
import time

from os_xenapi.client import XenAPI

url, user, password = sys.argv[1:4]
session = XenAPI.Session(url)
session.xenapi.login_with_password(user, password, "1.0", "bioxen-test")
x = session.xenapi
print("login ok")

vms = x.VM.get_all_records()
templates = [r for r, v in vms.items() if v["is_a_template"] and v["name_label"] == "lua-bio-template"]
assert len(templates) == 1, templates
dom0 = [v for v in vms.values() if v["is_control_domain"]]
assert len(dom0) == 1 and dom0[0]["power_state"] == "Running", dom0
# int64 arrive as strings through XML-RPC, as from a real xapi.
assert vms[templates[0]]["memory_static_max"] == "1073741824", vms[templates[0]]["memory_static_max"]
print("listed %d VM records" % len(vms))

pool = list(x.pool.get_all_records().keys())[0]
token = x.event.inject("pool", pool)

vm = x.VM.clone(templates[0], "from-python")
assert x.VM.get_is_a_template(vm) is True
x.VM.provision(vm)
assert x.VM.get_is_a_template(vm) is False
x.VM.start(vm, False, False)
print("cloned, provisioned, started")

state = None
ip = None
deadline = time.time() + 20
while time.time() < deadline and not (state == "Running" and ip):
    batch = getattr(x.event, "from")(["vm", "vm_guest_metrics"], token, 5.0)
    token = batch["token"]
    for ev in batch["events"]:
        if ev["class"] == "vm" and ev["ref"] == vm and ev["operation"] in ("add", "mod"):
            state = ev["snapshot"]["power_state"]
        if ev["class"] == "vm_guest_metrics" and ev["operation"] == "add":
            ip = ev["snapshot"]["networks"].get("0/ip")
assert state == "Running", state
assert ip, "no IP reported"
print("event.from reported %s with IP %s" % (state, ip))

try:
    x.VM.destroy(vm)
    raise AssertionError("destroying a running VM must fail")
except XenAPI.Failure as f:
    assert f.details[0] == "VM_BAD_POWER_STATE", f.details
    print("destroy refused: %s" % f.details[0])
x.VM.hard_shutdown(vm)
x.VM.destroy(vm)
session.xenapi.session.logout()
print("done")
