"""Failed-login throttling: back-off, lockout and its expiry, on a fake clock."""

import contextlib
import threading

import pytest
from argon2 import PasswordHasher

from emsbox.web.accounts import AccountStore, LoginRefused, Role
from emsbox.web.throttle import (
    ACCOUNT_POLICY,
    CLIENT_POLICY,
    LoginThrottle,
    Throttled,
    ThrottlePolicy,
)

PASSWORD = "correct horse battery"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class CountingHasher(PasswordHasher):
    """A cheap Argon2id hasher that counts its checks."""

    def __init__(self):
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verifies = 0

    def verify(self, hash, password):
        self.verifies += 1
        return super().verify(hash, password)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def hasher():
    return CountingHasher()


@pytest.fixture
def store(tmp_path, clock, hasher):
    s = AccountStore(tmp_path / "users.sqlite3", hasher=hasher, throttle=LoginThrottle(clock=clock))
    s.add_user("ada", PASSWORD, Role.ADMIN)
    return s


def fail(store, name="ada", client="10.0.0.1"):
    with pytest.raises(LoginRefused) as info:
        store.verify_password(name, "wrong password", client)
    return info.value


def test_policy_schedule():
    waits = [ACCOUNT_POLICY.wait_s(n) for n in range(12)]
    assert waits == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 900, 900]
    assert CLIENT_POLICY.wait_s(4) == 0 and CLIENT_POLICY.wait_s(5) == 1
    assert CLIENT_POLICY.wait_s(30) == 900
    # A lockout must end before the failures are forgotten, or it would never be felt.
    for policy in (ACCOUNT_POLICY, CLIENT_POLICY):
        assert policy.lockout_s < policy.forget_after_s
        assert policy.free_failures < policy.lockout_failures


def test_a_few_failures_are_free_then_the_wait_doubles(store, clock):
    for _ in range(2):
        assert fail(store).retry_after_s == 0
    third = fail(store)
    assert third.retry_after_s == 1 and "wrong user name or password" in str(third)
    refused = fail(store)
    assert "too many failed logins: try again in 1 s" in str(refused)
    clock.advance(1)
    assert fail(store).retry_after_s == 2
    clock.advance(1.5)
    assert 0 < fail(store).retry_after_s <= 0.5
    clock.advance(0.5)
    assert fail(store).retry_after_s == 4


def test_throttled_attempts_are_refused_without_hashing(store, clock, hasher):
    for _ in range(3):
        fail(store)
    checked = hasher.verifies
    for _ in range(20):
        refused = fail(store)
        assert refused.retry_after_s > 0
    assert hasher.verifies == checked
    # Even the right password is not checked while throttled.
    with pytest.raises(LoginRefused, match="too many"):
        store.verify_password("ada", PASSWORD, "10.0.0.1")
    assert hasher.verifies == checked


def lock_out(store, clock, name="ada", client="10.0.0.1"):
    for _ in range(ACCOUNT_POLICY.lockout_failures):
        clock.advance(store_wait(store, name, client))
        fail(store, name, client)


def store_wait(store, name, client):
    return store._throttle.retry_after_s(name.casefold(), client)


def test_ten_failures_lock_the_account_for_fifteen_minutes(store, clock):
    lock_out(store, clock)
    assert fail(store).retry_after_s == 900
    # From another address too: the lockout is the account's.
    assert fail(store, client="10.9.9.9").retry_after_s == 900
    with pytest.raises(LoginRefused, match="too many"):
        store.verify_password("ada", PASSWORD, "10.9.9.9")
    clock.advance(899)
    with pytest.raises(LoginRefused, match="too many"):
        store.verify_password("ada", PASSWORD, "10.0.0.1")
    # After the lockout one attempt is checked; failing it locks the account again.
    clock.advance(1)
    assert fail(store).retry_after_s == 900
    clock.advance(900)
    assert store.verify_password("ada", PASSWORD, "10.0.0.1").name == "ada"
    # Success reset the account: a new mistake is free again.
    assert fail(store, client="10.2.2.2").retry_after_s == 0


def test_success_resets_the_account_counter(store, clock):
    fail(store)
    fail(store)
    store.verify_password("ada", PASSWORD, "10.0.0.1")
    fail(store, client="10.0.0.3")
    fail(store, client="10.0.0.3")
    assert fail(store, client="10.0.0.4").retry_after_s == 1  # third of the new run


def test_failures_are_forgotten_after_a_quiet_day(store, clock):
    lock_out(store, clock)
    clock.advance(ACCOUNT_POLICY.forget_after_s)
    assert fail(store).retry_after_s == 0


def test_one_address_spraying_many_names_is_throttled(store, clock, hasher):
    client = "203.0.113.7"
    for i in range(CLIENT_POLICY.free_failures - 1):
        assert fail(store, f"guess{i}", client).retry_after_s == 0
    assert fail(store, "guess-last", client).retry_after_s == 1
    assert store_wait(store, "new-name", client) == 1
    with pytest.raises(LoginRefused, match="too many"):
        store.verify_password("ada", PASSWORD, client)
    # Another address is not affected.
    assert store.verify_password("ada", PASSWORD, "198.51.100.1").name == "ada"


def test_unknown_names_are_throttled_like_known_ones(store, clock, hasher):
    before = hasher.verifies
    known = [fail(store, "ada", f"10.1.0.{i}").retry_after_s for i in range(5)]
    unknown = [fail(store, "zed", f"10.2.0.{i}").retry_after_s for i in range(5)]
    assert known == unknown == [0, 0, 1, 1, 1]
    # And each checked attempt cost one hash, known name or not.
    assert hasher.verifies - before == 2 * 3


def test_admin_setting_a_password_lifts_a_lockout(store, clock):
    lock_out(store, clock)
    store.set_password("ada", "the new password")
    assert store.verify_password("ada", "the new password", "10.0.0.2").name == "ada"


def test_a_successful_login_does_not_clear_the_address_record():
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    for i in range(CLIENT_POLICY.free_failures):
        throttle.begin(f"victim{i}", "evil")
    clock.advance(1)
    throttle.succeeded(throttle.begin("own-account", "evil"))
    assert throttle.retry_after_s("anyone", "evil") == 0  # waited out the 1 s
    throttle.begin("victim9", "evil")
    assert throttle.retry_after_s("anyone", "evil") == 2  # the run goes on


def test_a_successful_attempt_is_forgiven_exactly():
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    throttle.begin("a", "c")
    throttle.begin("a", "c")
    clock.advance(10)
    throttle.succeeded(throttle.begin("a", "c"))
    # The client's record is back to two failures at their original time.
    assert throttle.retry_after_s("b", "c") == 0
    for _ in range(3):
        throttle.begin("x", "c")
    assert throttle.retry_after_s("b", "c") == 1


def test_parallel_attempts_cannot_slip_past_the_count():
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    let_through = []
    barrier = threading.Barrier(50)

    def attempt():
        barrier.wait()
        with contextlib.suppress(Throttled):
            let_through.append(throttle.begin("ada", "c"))

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Counted before checking: only the free attempts pass at once, however many race.
    assert len(let_through) == ACCOUNT_POLICY.free_failures


def test_the_table_is_bounded():
    clock = FakeClock()
    policy = ThrottlePolicy(1, 1.0, 60.0, 10, 900.0, 3600.0)
    throttle = LoginThrottle(clock=clock, account_policy=policy, client_policy=policy, max_keys=5)
    for i in range(50):
        throttle.begin(f"name{i}", f"client{i}")
    assert len(throttle._accounts._records) == 5
    assert len(throttle._clients._records) == 5
    clock.advance(3600)
    throttle.begin("late", "late")
    assert len(throttle._accounts._records) == 1


def test_throttled_message_rounds_up():
    assert str(Throttled(0.2)) == "too many failed logins: try again in 1 s"
    assert Throttled(0.2).retry_after_s == 0.2


def test_forgiving_an_attempt_overtaken_by_another_takes_back_just_one():
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    first = throttle.begin("a", "c")
    clock.advance(1)
    throttle.begin("b", "c")  # counted while the first was still being checked
    throttle.succeeded(first)
    for _ in range(CLIENT_POLICY.free_failures - 2):
        throttle.begin(f"x{_}", "c")
    assert throttle.retry_after_s("z", "c") == 0  # one failure was taken back: 4 remain
    throttle.begin("y", "c")
    assert throttle.retry_after_s("z", "c") == 1
