import pytest

from kstreams import Processor, PunctuationType, Record, Topology, serdes
from kstreams.testing import TopologyTestDriver

S = {"key_serde": serdes.STRING, "value_serde": serdes.STRING}


def run(processor_cls, steps, initial_wall_clock=0):
    t = (Topology().add_source("src", ["in"], **S).add_processor("p", processor_cls, "src")
         .add_sink("k", "out", "p", **S))
    with TopologyTestDriver(t, initial_wall_clock_time_ms=initial_wall_clock) as d:
        inp = d.create_input_topic("in", **S)
        for step in steps:
            if step[0] == "pipe":
                inp.pipe_input("k", "v", step[1])
            else:
                d.advance_wall_clock_time(step[1])
        return d.create_output_topic("out", **S).read_values_to_list()


class StreamTicks(Processor):
    def init(self, context):
        self.context = context
        context.schedule(10_000, PunctuationType.STREAM_TIME, self.tick)

    def tick(self, ts):
        self.context.forward(Record("t", f"tick@{ts}", ts))

    def process(self, record):
        pass


def test_stream_time_punctuation_anchored_at_zero_fires_once_per_jump():
    steps = [("pipe", t) for t in (1000, 5000, 12000, 37000, 38000, 41000)]
    assert run(StreamTicks, steps) == ["tick@1000", "tick@12000", "tick@37000", "tick@41000"]


def test_stream_time_never_decreases_and_wall_clock_does_not_drive_it():
    steps = [("pipe", 15000), ("pipe", 3000), ("wall", 60_000), ("pipe", 19999), ("pipe", 20000)]
    assert run(StreamTicks, steps) == ["tick@15000", "tick@20000"]


class CancelInside(Processor):
    def init(self, context):
        self.context = context
        self.calls = 0
        self.handle = context.schedule(5, PunctuationType.WALL_CLOCK_TIME, self.tick)

    def tick(self, ts):
        self.calls += 1
        self.context.forward(Record("t", f"w@{ts}", ts))
        if self.calls == 2:
            self.handle.cancel()

    def process(self, record):
        pass


def test_wall_clock_punctuation_first_at_schedule_plus_interval_and_cancel_inside():
    steps = [("wall", 4), ("wall", 1), ("wall", 12), ("wall", 5), ("wall", 100)]
    assert run(CancelInside, steps, initial_wall_clock=100) == ["w@105", "w@117"]


class ScheduleInProcess(Processor):
    def init(self, context):
        self.context = context
        self.scheduled = False

    def process(self, record):
        if not self.scheduled:
            self.scheduled = True
            self.context.schedule(100, PunctuationType.STREAM_TIME,
                                  lambda ts: self.context.forward(Record("t", f"late@{ts}", ts)))


def test_stream_time_schedule_made_mid_stream_fires_at_next_check():
    assert run(ScheduleInProcess, [("pipe", 250), ("pipe", 260), ("pipe", 300)]) == ["late@250", "late@300"]


class CancelFromProcess(Processor):
    def init(self, context):
        self.context = context
        self.handle = context.schedule(10, PunctuationType.STREAM_TIME,
                                       lambda ts: context.forward(Record("t", f"s@{ts}", ts)))

    def process(self, record):
        if record.timestamp >= 25:
            self.handle.cancel()


def test_cancel_from_process_stops_before_next_check():
    assert run(CancelFromProcess, [("pipe", t) for t in (1, 11, 25, 31, 45)]) == ["s@1", "s@11"]


class BadInterval(Processor):
    def init(self, context):
        context.schedule(0, PunctuationType.STREAM_TIME, lambda ts: None)

    def process(self, record):
        pass


def test_minimum_interval():
    t = Topology().add_source("src", ["in"], **S).add_processor("p", BadInterval, "src")
    with pytest.raises(Exception, match="minimum supported scheduling interval is 1 millisecond"):
        TopologyTestDriver(t)


class Failing(Processor):
    def init(self, context):
        context.schedule(10, PunctuationType.WALL_CLOCK_TIME, self.tick)

    def tick(self, ts):
        raise RuntimeError("tick failed")

    def process(self, record):
        pass


def test_punctuation_error_names_processor():
    from kstreams.errors import ProcessingError

    t = Topology().add_source("src", ["in"], **S).add_processor("ticker", Failing, "src")
    with TopologyTestDriver(t, initial_wall_clock_time_ms=0) as d:
        with pytest.raises(ProcessingError, match="while punctuating processor 'ticker'"):
            d.advance_wall_clock_time(10)
