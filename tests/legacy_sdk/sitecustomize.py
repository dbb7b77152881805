# Put first on PYTHONPATH by tests/legacy_sdk.rs (the SDK itself stays untouched): the
# protobuf 3.6.1 bundled in gt-push-sdk 4.1.1.2 still imports collections.MutableMapping & co.,
# which Python 3.10 removed (shared/reference/getui-legacy-and-sms.md §1.9, quirk 1).
import collections
import collections.abc

for _name in ("MutableMapping", "Mapping", "MutableSequence", "Sequence", "Callable", "Iterable",
              "MutableSet", "Set"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))
