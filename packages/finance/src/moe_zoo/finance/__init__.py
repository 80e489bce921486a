"""MIGA: mixture of style experts with inner group attention for stock prediction, with a backtest."""
