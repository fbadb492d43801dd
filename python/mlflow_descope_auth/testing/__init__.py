"""A local Descope emulator for tests and offline demos (install the `[testing]` extra).

Nothing here runs unless started explicitly::

    from mlflow_descope_auth.testing import DescopeEmulator

    with DescopeEmulator() as emu:
        emu.create_user("alice", roles=["mlflow-editor"])
        tokens = emu.login("alice")

The emulator needs `cryptography` and `PyJWT`; they are imported only when
`DescopeEmulator` or `User` is first used, so the pytest plugin in this
package can be registered without the extra installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow_descope_auth.testing.emulator import DescopeEmulator, User

__all__ = ["DescopeEmulator", "User"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mlflow_descope_auth.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
