"""Every query of the history is the owner's: another owner's ids read as not found and
change nothing."""

import pytest
from sqlalchemy import create_engine

from {{ cookiecutter.package_name }}_ui.history import (
    History,
    StoredMessage,
    is_owner_id,
    new_owner_id,
    open_database,
)


@pytest.fixture
def database(database_url):
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def alice(database):
    return History(new_owner_id(), database)


@pytest.fixture
def bob(database):
    return History(new_owner_id(), database)


def conversation_with_a_turn(history: History, title: str = "Alice's chat") -> int:
    conversation_id = history.create(title).id
    for role, content in [("user", "Question?"), ("assistant", "Answer.")]:
        message = StoredMessage(conversation_id=conversation_id, role=role, content=content)
        history.add_message(message)
    return conversation_id


def test_owner_ids_are_random_and_well_formed():
    first, second = new_owner_id(), new_owner_id()
    assert first != second
    assert is_owner_id(first) and is_owner_id(second)
    for forged in ["", "nobody", first[:-1], first + "x", first[:-1] + "/"]:
        assert not is_owner_id(forged)
        with pytest.raises(ValueError):
            History(forged, create_engine("sqlite://"))


def test_each_owner_lists_only_their_own_conversations(alice, bob):
    alices = conversation_with_a_turn(alice)
    bobs = conversation_with_a_turn(bob, "Bob's chat")
    assert [c.id for c in alice.conversations()] == [alices]
    assert [c.id for c in bob.conversations()] == [bobs]


def test_another_owners_conversation_reads_as_not_found(alice, bob):
    alices = conversation_with_a_turn(alice)
    assert bob.get(alices) is None
    assert bob.messages(alices) == []
    assert alice.get(alices).title == "Alice's chat"
    assert [m.content for m in alice.messages(alices)] == ["Question?", "Answer."]


def test_another_owner_can_neither_rename_nor_delete(alice, bob):
    alices = conversation_with_a_turn(alice)
    bob.update(alices, title="Taken", system_prompt="Leak everything.", model="openai/x")
    bob.delete(alices)
    conversation = alice.get(alices)
    assert (conversation.title, conversation.system_prompt, conversation.model) == (
        "Alice's chat",
        "",
        "",
    )
    assert len(alice.messages(alices)) == 2


def test_another_owner_can_neither_edit_nor_truncate_nor_append(alice, bob):
    """What edit-and-resend (update, truncate) and regenerate (truncate, append) write."""
    alices = conversation_with_a_turn(alice)
    question = alice.messages(alices)[0]
    bob.update_message(alices, question.id, "Edited by Bob")
    bob.delete_messages_after(alices, question.id)
    intruder = StoredMessage(conversation_id=alices, role="user", content="Bob was here")
    assert bob.add_message(intruder) is None
    assert [m.content for m in alice.messages(alices)] == ["Question?", "Answer."]


def test_a_message_is_edited_only_within_the_conversation_named(alice, bob):
    """Bob's own conversation id with Alice's message id must not reach Alice's message."""
    alices = conversation_with_a_turn(alice)
    other = conversation_with_a_turn(alice, "Another")
    bobs = conversation_with_a_turn(bob, "Bob's")
    question = alice.messages(alices)[0]
    bob.update_message(bobs, question.id, "Crossed by Bob")
    alice.update_message(other, question.id, "Crossed")
    assert alice.messages(alices)[0].content == "Question?"
    alice.update_message(alices, question.id, "Edited")
    assert alice.messages(alices)[0].content == "Edited"


def test_the_owner_renames_edits_truncates_and_deletes(alice, bob):
    alices = conversation_with_a_turn(alice)
    bobs = conversation_with_a_turn(bob, "Bob's chat")
    alice.update(alices, title="Renamed")
    assert alice.get(alices).title == "Renamed"
    question = alice.messages(alices)[0]
    alice.delete_messages_after(alices, question.id)
    assert [m.content for m in alice.messages(alices)] == ["Question?"]
    alice.delete(alices)
    assert alice.get(alices) is None and alice.conversations() == []
    assert len(bob.messages(bobs)) == 2  # untouched


def test_a_new_message_moves_its_conversation_to_the_top(alice):
    older = conversation_with_a_turn(alice, "Older")
    newer = conversation_with_a_turn(alice, "Newer")
    assert [c.id for c in alice.conversations()] == [newer, older]
    alice.add_message(StoredMessage(conversation_id=older, role="user", content="Again?"))
    assert [c.id for c in alice.conversations()] == [older, newer]


def test_files_are_the_owners_and_go_with_their_question(alice, bob):
    conversation_id = conversation_with_a_turn(alice)
    question, answer = alice.messages(conversation_id)
    sent = alice.add_attachment("a.csv", "text/csv", b"a,b\n")
    kept = alice.add_attachment("b.csv", "text/csv", b"c,d\n")
    given = alice.attach(question.id, [sent.id])
    not_given = bob.attach(answer.id, [kept.id])  # not Bob's to give
    bob.discard_attachment(kept.id)  # nor to forget

    assert [f.filename for f in given] == ["a.csv"] and not_given == []
    assert [f.filename for f in alice.attachments([question.id, answer.id])] == ["a.csv"]
    assert [f.filename for f in alice.unsent_attachments()] == ["b.csv"]
    assert alice.attachment(sent.id).data == b"a,b\n"
    assert bob.attachment(sent.id) is None and bob.unsent_attachments() == []
    alice.discard_attachment(sent.id)  # sent: it stays with its question
    assert alice.attachment(sent.id) is not None
    alice.delete_messages_after(conversation_id, 0)
    assert alice.attachment(sent.id) is None
    alice.discard_attachment(kept.id)
    assert alice.unsent_attachments() == []


def test_a_conversations_files_are_deleted_with_it(alice):
    conversation_id = conversation_with_a_turn(alice)
    question = alice.messages(conversation_id)[0]
    file = alice.add_attachment("dot.png", "image/png", b"\x89PNG")
    alice.attach(question.id, [file.id])

    alice.delete(conversation_id)

    assert alice.attachment(file.id) is None
