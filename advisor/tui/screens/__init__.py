"""The TUI's screens. Each is a `Screen[T]`: it gets what it shows when it is built and returns
what the user decided with `dismiss(result)`; it never writes the app's state. The app
(advisor.tui.app) pushes them in turn and chooses what comes next from their results:

welcome -> data -> labels -> resources -> goals -> recommendation -> run -> results

Slow work (checking the data, ranking, running the harness) happens in a screen's thread worker,
which reports back with `Message`s posted to the screen, so the interface never blocks.
`escape` goes back, `ctrl+n` goes on; the app's `ctrl+s` saves the answers.
"""

from advisor.tui.screens.base import Choice, DataResult, FormResult, Nav, RunOutcome, StepScreen
from advisor.tui.screens.data import DataScreen
from advisor.tui.screens.forms import QuestionScreen, ResourcesScreen, WelcomeScreen
from advisor.tui.screens.recommendation import RecommendationScreen
from advisor.tui.screens.results import ResultsScreen
from advisor.tui.screens.run import RunScreen

__all__ = ["Choice", "DataResult", "DataScreen", "FormResult", "Nav", "QuestionScreen",
           "RecommendationScreen", "ResourcesScreen", "ResultsScreen", "RunOutcome", "RunScreen",
           "StepScreen", "WelcomeScreen"]
