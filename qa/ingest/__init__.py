"""Reading articles in: file formats, web pages and feeds (``newsqa add``), the SQuAD loader."""
