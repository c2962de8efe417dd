"""Modbus TCP adapters: register codec, register maps, transport, device adapters.

pymodbus is imported only here (``transport``) and in ``simulators/``; its minor version
is pinned in pyproject.toml because its API changes between minor releases.
"""
