"""What a run reports: subtest results and JUnit XML, report.html and its timeline."""
